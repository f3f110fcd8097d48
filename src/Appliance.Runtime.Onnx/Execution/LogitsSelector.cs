using Appliance.Runtime.Onnx.Execution.Memory;
using Appliance.Runtime.Onnx.OnnxFormat;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// Cuts the rows the sampler needs out of a run's logits on the device the model runs on, converts them to float32
/// there, and writes them straight into host memory: a [batch, positions, vocabulary] tensor never crosses to the
/// host. A three-node ONNX graph (Reshape, Gather, Cast) in its own session on the same device does the work, so the
/// same path runs on the CPU and on CUDA.
/// </summary>
internal sealed class LogitsSelector : IDisposable
{
    private const string LogitsInput = "logits";
    private const string RowsInput = "rows";
    private const string SelectedOutput = "selected";

    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();

    public LogitsSelector(TensorElementType logitsType, int vocabularySize, SessionDevice device)
    {
        _session = SessionFactory.CreateHelper(Graph(logitsType, vocabularySize), device);
    }

    /// <summary>
    /// Writes logits rows <paramref name="flatRows"/> (indexes into batch x positions) into
    /// <paramref name="destination"/>, as float32 rows one after another.
    /// </summary>
    public void Select(OrtValue logits, long[] flatRows, OrtValue destination)
    {
        using var rows = OrtValue.CreateTensorValueFromMemory(flatRows, [flatRows.Length]);
        using var binding = _session.CreateIoBinding();
        binding.BindInput(LogitsInput, logits);
        binding.BindInput(RowsInput, rows);
        binding.BindOutput(SelectedOutput, destination);
        _session.RunWithBinding(_runOptions, binding);
        binding.SynchronizeBoundOutputs();
    }

    public void Dispose()
    {
        _session.Dispose();
        _runOptions.Dispose();
    }

    private static byte[] Graph(TensorElementType logitsType, int vocabularySize)
    {
        var g = new OnnxGraphBuilder("appliance_logits_selector");
        g.Input(LogitsInput, (OnnxDataType)(int)logitsType, "batch", "positions", vocabularySize);
        g.Input(RowsInput, OnnxDataType.Int64, "rows");
        g.Output(SelectedOutput, OnnxDataType.Float, "rows", vocabularySize);
        var flat = g.Node("Reshape", [LogitsInput, g.Int64Constant([-1, vocabularySize], 2)]);
        if (logitsType == TensorElementType.Float)
        {
            g.NodeWithOutputs("Gather", [flat, RowsInput], [SelectedOutput], OnnxAttribute.Integer("axis", 0));
        }
        else
        {
            var picked = g.Node("Gather", [flat, RowsInput], OnnxAttribute.Integer("axis", 0));
            g.NodeWithOutputs("Cast", [picked], [SelectedOutput], OnnxAttribute.Integer("to", (long)OnnxDataType.Float));
        }

        using var stream = new MemoryStream();
        g.WriteTo(stream, 17, "appliance");
        return stream.ToArray();
    }
}
