namespace Appliance.Engine;

/// <summary>One sequence's part of a model run: the tokens to feed now and how many it already has in the KV cache.</summary>
/// <param name="SequenceId">Stable id of the sequence; the runner keys its KV state by it.</param>
/// <param name="NewTokens">Tokens to run this step (a prompt chunk, or the one token sampled last step).</param>
/// <param name="PastLength">Tokens of this sequence already in the runner's KV cache.</param>
public readonly record struct RunnerSequence(long SequenceId, ReadOnlyMemory<int> NewTokens, int PastLength)
{
    /// <summary>
    /// How many of the last new positions return logits (1: the next token's; more: to verify drafted tokens, each
    /// position's own row, in order).
    /// </summary>
    public int LogitsPositions { get; init; } = 1;

    /// <summary>
    /// The length of the prompt the sequence first arrived with (0: unknown, its positions count as run one by one).
    /// A model whose rotary cache depends on a run's width (<see cref="ModelInfo.WidthSwitchLength"/>) computes every
    /// prompt position as if the whole prompt ran at once, however it is chunked, as onnxruntime-genai runs it.
    /// </summary>
    public int PromptLength { get; init; }
}

/// <summary>
/// Runs a decoder model for a batch of sequences. The runner owns the KV cache tensors; the engine tells it
/// which sequences run and releases those that end.
/// </summary>
public interface IModelRunner : IDisposable
{
    ModelInfo Info { get; }

    /// <summary>Most sequences one run may hold.</summary>
    int MaxBatchSize { get; }

    /// <summary>
    /// Runs the model once for <paramref name="batch"/> and returns rows of next-token logits, in batch order, each
    /// <see cref="ModelInfo.VocabularySize"/> wide: <see cref="RunnerSequence.LogitsPositions"/> per sequence (at most
    /// <see cref="MaxBatchSize"/> rows in all). The memory is valid until the next call.
    /// </summary>
    ReadOnlyMemory<float> Execute(IReadOnlyList<RunnerSequence> batch);

    /// <summary>
    /// Asks the run in progress to stop soon; it then throws. Called from another thread (the engine's watchdog, or
    /// stopping); a call while no run is in progress may be ignored. Runners that cannot stop a run do nothing.
    /// </summary>
    void Interrupt()
    {
    }

    /// <summary>Forgets a sequence's KV state. Unknown ids are ignored.</summary>
    void Release(long sequenceId);

    /// <summary>The runner's pool for prefix caching; null when it has none (the engine then computes every prompt).</summary>
    IPrefixBlockStore? PrefixBlocks => null;

    /// <summary>
    /// Whether the runner can verify drafts: return logits for several positions of a row and drop positions again
    /// (<see cref="Rollback"/>). Speculative decoding needs both.
    /// </summary>
    bool SupportsRollback => false;

    /// <summary>
    /// Steps that took more than one model run because their rows lay on both sides of the model's rotary switch
    /// (<see cref="ModelInfo.WidthSwitchLength"/>): what keeping LongRoPE answers exact costs in throughput.
    /// </summary>
    long SplitSteps => 0;

    /// <summary>Whether a run can return logits for every new position (scoring a prompt needs it), not the last one only.</summary>
    bool LogitsEveryPosition => false;

    /// <summary>Most positions of one row that may return logits in one run (a row alone may return more than <see cref="MaxBatchSize"/>).</summary>
    int MaxLogitsPositions => MaxBatchSize;

    /// <summary>Shortens a sequence's KV state to its first <paramref name="length"/> tokens (drafts that were rejected).</summary>
    void Rollback(long sequenceId, int length) => throw new NotSupportedException("This runner cannot drop KV positions.");
}
