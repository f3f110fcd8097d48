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

    /// <summary>
    /// Fail rather than fall back to the CPU when CUDA cannot run the session (a replica placed on a GPU); false lets
    /// a runner asked for CUDA run on the CPU with a warning.
    /// </summary>
    public bool RequireCuda { get; init; }

    /// <summary>Most bytes the CUDA memory arena of this session may hold (its share of the device); null: no limit.</summary>
    public long? CudaMemoryLimitBytes { get; init; }

    /// <summary>How the CUDA arena grows: "next_power_of_two" (ONNX Runtime's default) or "same_as_requested" (tighter, for packed devices).</summary>
    public string CudaArenaExtendStrategy { get; init; } = "next_power_of_two";

    /// <summary>ONNX Runtime session configuration entries (for example session.intra_op.allow_spinning).</summary>
    public IReadOnlyDictionary<string, string> SessionConfig { get; init; } = new Dictionary<string, string>();

    /// <summary>Caps the context below the model's own (smaller KV arenas); null keeps the model's.</summary>
    public int? ContextLength { get; init; }

    /// <summary>
    /// Most bytes of logits one model run may produce ([rows, positions, vocabulary] on the device). A longer prefill
    /// runs in several pieces, so a 128k vocabulary never needs a [1024, 128k] logits tensor. Null: 16 MiB on the CPU
    /// (where the device is the host), 512 MiB on CUDA (fewer, larger runs keep the GPU busy).
    /// </summary>
    public long? LogitsBudgetBytes { get; init; }

    /// <summary>
    /// Tokens of KV the prefix cache's block pool holds (rounded up to whole blocks), beside the rows: prompt prefixes
    /// computed once are copied from there instead of computed again. Null: one context's worth; 0: no prefix cache.
    /// </summary>
    public int? PrefixCacheTokens { get; init; }

    /// <summary>Positions per prefix-cache block: prefixes are shared in whole blocks.</summary>
    public int PrefixBlockTokens { get; init; } = DefaultPrefixBlockTokens;

    public const int DefaultPrefixBlockTokens = 32;

    /// <summary>Blocks of the prefix cache for a context of <paramref name="contextLength"/> tokens.</summary>
    public int PrefixCacheBlocks(int contextLength) =>
        (int)(((long)(PrefixCacheTokens ?? contextLength) + PrefixBlockTokens - 1) / PrefixBlockTokens);

    public const long CpuLogitsBudgetBytes = 16L << 20;

    /// <summary>Host memory for a scored prompt's chunk of float32 logits rows (more rows a run: fewer runs per prompt).</summary>
    public const long ScoringHostLogitsBytes = 16L << 20;

    /// <summary>
    /// Rows of float32 logits a runner keeps on the host: one per sequence for a step, and as many as a scored prompt's
    /// chunk may return within <see cref="ScoringHostLogitsBytes"/> and what one run may produce; a model that returns
    /// the last position's logits only (<paramref name="scoring"/> false) cannot score, and keeps a step's rows.
    /// </summary>
    public static int HostLogitsRows(int maxBatchSize, int vocabulary, int positionsPerRun, bool scoring = true) =>
        scoring ? Math.Max(maxBatchSize, Math.Min(positionsPerRun, (int)(ScoringHostLogitsBytes / ((long)vocabulary * sizeof(float))))) : maxBatchSize;

    /// <summary>Positions whose logits one run may produce on the device, within the budget.</summary>
    public int PositionsPerRun(bool cuda, int vocabulary, int logitsElementSize) =>
        (int)Math.Clamp(LogitsBudgetFor(cuda) / ((long)vocabulary * logitsElementSize), 1, int.MaxValue);

    public const long CudaLogitsBudgetBytes = 512L << 20;

    /// <summary>The logits budget in force on a device.</summary>
    public long LogitsBudgetFor(bool cuda) => LogitsBudgetBytes ?? (cuda ? CudaLogitsBudgetBytes : CpuLogitsBudgetBytes);

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

        if (CudaMemoryLimitBytes is < 1)
        {
            return "CudaMemoryLimitBytes must be positive when set";
        }

        if (CudaArenaExtendStrategy is not ("next_power_of_two" or "same_as_requested"))
        {
            return "CudaArenaExtendStrategy must be next_power_of_two or same_as_requested";
        }

        if (CudaDeviceId is < 0)
        {
            return "CudaDeviceId must not be negative";
        }

        if (LogitsBudgetBytes is < 1)
        {
            return "LogitsBudgetBytes must be positive when set";
        }

        if (PrefixCacheTokens is < 0)
        {
            return "PrefixCacheTokens must not be negative";
        }

        if (PrefixBlockTokens is < 1 or > 4096)
        {
            return "PrefixBlockTokens must be between 1 and 4096";
        }

        return ContextLength is < 2 ? "ContextLength must be at least 2 when set" : null;
    }
}
