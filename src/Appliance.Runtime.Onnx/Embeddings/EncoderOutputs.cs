using Appliance.Runtime.Onnx.Models;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Embeddings;

internal static class EncoderOutputs
{
    /// <summary>Encoder outputs are read as float32; a float16 export (optimum's --fp16) is refused at load, not at the first request.</summary>
    public static void RequireFloat(string folder, InferenceSession session, string output)
    {
        var type = session.OutputMetadata[output].ElementDataType;
        if (type != TensorElementType.Float)
        {
            throw new ModelFolderException($"{folder}: the model's output '{output}' is {type}; encoder models are served from float32 exports.");
        }
    }
}
