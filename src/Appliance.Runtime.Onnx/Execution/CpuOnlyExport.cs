using Appliance.Runtime.Onnx.OnnxFormat;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// The model builder's CPU export (-e cpu, fp32 or int4): GroupQueryAttention over a float32 KV cache. ONNX Runtime's
/// CUDA attention takes float16 and bfloat16 only, so on a GPU the attention would run on the CPU and the whole cache
/// would cross PCIe twice a step: such an export is served from a CPU slot.
/// </summary>
public static class CpuOnlyExport
{
    public static bool Is(DecoderSignature signature, OnnxGraphSignature graph) =>
        signature.KvType == TensorElementType.Float && graph.Uses("com.microsoft", "GroupQueryAttention");
}
