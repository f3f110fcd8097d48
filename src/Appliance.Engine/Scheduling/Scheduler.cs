using Appliance.Engine.KvCache;

namespace Appliance.Engine.Scheduling;

/// <summary>
/// Decides each step's work: every running sequence decodes one token, and waiting sequences join as their
/// KV reservation and the prefill token budget allow (first come, first served). Owned by the engine thread.
/// </summary>
internal sealed class Scheduler(SchedulerOptions options, KvCacheManager kvCache, int contextLength)
{
    private readonly LinkedList<Sequence> _waiting = new();
    private readonly List<Sequence> _running = [];

    public int WaitingCount => _waiting.Count;

    public int RunningCount => _running.Count;

    public bool HasWork => _waiting.Count > 0 || _running.Count > 0;

    public IEnumerable<Sequence> All => _waiting.Concat(_running);

    public void Add(Sequence sequence) => _waiting.AddLast(sequence);

    /// <summary>Takes out every sequence whose reader went away; says for each whether it was still waiting.</summary>
    public List<(Sequence Sequence, bool WasWaiting)> RemoveCancelled()
    {
        var removed = new List<(Sequence, bool)>();
        for (var node = _waiting.First; node is not null;)
        {
            var next = node.Next;
            if (node.Value.CancelRequested)
            {
                _waiting.Remove(node);
                node.Value.Status = SequenceStatus.Finished;
                removed.Add((node.Value, true));
            }

            node = next;
        }

        foreach (var sequence in _running.Where(s => s.CancelRequested).ToList())
        {
            Finish(sequence);
            removed.Add((sequence, false));
        }

        return removed;
    }

    public SchedulerPlan Schedule()
    {
        var decode = _running
            .Where(s => s.Status == SequenceStatus.Running)
            .Select(s => new ScheduledSequence(s, 1))
            .ToList();
        var chunking = _running.FirstOrDefault(s => s.Status == SequenceStatus.Prefilling);
        var prefill = chunking is not null ? [NextChunk(chunking)] : AdmitWaiting();
        return new SchedulerPlan(prefill, decode);
    }

    public void Finish(Sequence sequence)
    {
        _running.Remove(sequence);
        kvCache.Free(sequence.Id);
        sequence.Status = SequenceStatus.Finished;
    }

    private ScheduledSequence NextChunk(Sequence sequence) =>
        new(sequence, Math.Min(sequence.Tokens.Count - sequence.Computed, options.PrefillTokenBudget));

    private List<ScheduledSequence> AdmitWaiting()
    {
        var admitted = new List<ScheduledSequence>();
        var longestPrompt = 0;
        while (_waiting.First is { } node && _running.Count < options.MaxBatchSize)
        {
            var sequence = node.Value;
            var length = sequence.PromptLength;
            // Newcomers are prefilled together, padded to the longest prompt: count padded tokens against the budget.
            var paddedTokens = Math.Max(longestPrompt, length) * (admitted.Count + 1);
            if (admitted.Count > 0 && paddedTokens > options.PrefillTokenBudget)
            {
                break;
            }

            if (kvCache.TryAllocate(sequence.Id, sequence.ReservedTokens(contextLength)) is null)
            {
                break;
            }

            _waiting.RemoveFirst();
            _running.Add(sequence);
            sequence.Status = SequenceStatus.Prefilling;
            if (length > options.PrefillTokenBudget)
            {
                // A prompt longer than the budget is prefilled alone, one chunk per step.
                admitted.Add(NextChunk(sequence));
                break;
            }

            admitted.Add(new ScheduledSequence(sequence, length));
            longestPrompt = Math.Max(longestPrompt, length);
        }

        return admitted;
    }
}
