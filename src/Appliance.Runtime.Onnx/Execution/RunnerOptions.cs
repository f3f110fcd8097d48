namespace Appliance.Runtime.Onnx.Execution;

/// <summary>How a model's ONNX Runtime session runs.</summary>
public sealed record RunnerOptions
{
    /// <summary>Most sequences per run; the KV arenas are sized for it.</summary>
    public int MaxBatchSize { get; init; } = 8;

    /// <summary>Threads for one operator; 0 lets ONNX Runtime use every core.</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>CUDA device to run on; null runs on the CPU.</summary>
    public int? CudaDeviceId { get; init; }

    /// <summary>ONNX Runtime session configuration entries (for example session.intra_op.allow_spinning).</summary>
    public IReadOnlyDictionary<string, string> SessionConfig { get; init; } = new Dictionary<string, string>();

    /// <summary>Caps the context below the model's own (smaller KV arenas); null keeps the model's.</summary>
    public int? ContextLength { get; init; }

    public string? Validate()
    {
        if (MaxBatchSize is < 1 or > 256)
        {
            return "MaxBatchSize must be between 1 and 256";
        }

        if (IntraOpThreads < 0)
        {
            return "IntraOpThreads must not be negative";
        }

        return ContextLength is < 2 ? "ContextLength must be at least 2 when set" : null;
    }
}
