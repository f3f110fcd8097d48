using Appliance.Engine.KvCache;
using Appliance.Engine.Requests;

namespace Appliance.Engine.Scheduling;

/// <summary>
/// Decides each step's work: every running sequence decodes one token, and waiting sequences join as their KV
/// reservation and the prefill token budget allow, chosen by priority class and then by weighted fair queueing
/// between tenants. Owned by the engine thread.
/// </summary>
internal sealed class Scheduler
{
    private readonly SchedulerOptions _options;
    private readonly KvCacheManager _kvCache;
    private readonly int _contextLength;
    private readonly FairQueue _interactive;
    private readonly FairQueue _batch;
    private readonly List<Sequence> _running = [];
    private readonly Dictionary<string, int> _runningByTenant = new(StringComparer.Ordinal);
    private readonly PrefixCache? _prefix;
    private readonly Action<long> _releaseKv;
    private readonly int _scoringChunk;
    private int _interactiveStreak;

    /// <param name="releaseKv">Drops a preempted sequence's KV in the runner at once, so its row is free for an admission in the same step.</param>
    /// <param name="scoringChunk">Most prompt tokens of a scored prompt per step: each returns a row of logits, and a run returns this many at most.</param>
    public Scheduler(SchedulerOptions options, KvCacheManager kvCache, int contextLength, PrefixCache? prefix = null, Action<long>? releaseKv = null, int scoringChunk = int.MaxValue)
    {
        (_options, _kvCache, _contextLength, _prefix) = (options, kvCache, contextLength, prefix);
        _scoringChunk = Math.Max(1, scoringChunk);
        _releaseKv = releaseKv ?? (_ => { });
        _interactive = new FairQueue(options.WeightOf);
        _batch = new FairQueue(options.WeightOf);
    }

    public int WaitingCount => _interactive.Count + _batch.Count;

    public int RunningCount => _running.Count;

    public bool HasWork => WaitingCount > 0 || _running.Count > 0;

    public IEnumerable<Sequence> All => _interactive.All.Concat(_batch.All).Concat(_running);

    /// <summary>Running sequences per tenant (for the pool view).</summary>
    public IReadOnlyDictionary<string, int> RunningByTenant => _runningByTenant;

    public void Add(Sequence sequence) => QueueOf(sequence.Request.Priority).Add(sequence);

    /// <summary>Takes out every sequence whose reader went away; says for each whether it was still waiting.</summary>
    public List<(Sequence Sequence, bool WasWaiting)> RemoveCancelled()
    {
        var removed = new List<(Sequence, bool)>();
        foreach (var sequence in _interactive.RemoveWhere(s => s.CancelRequested).Concat(_batch.RemoveWhere(s => s.CancelRequested)))
        {
            sequence.Status = SequenceStatus.Finished;
            removed.Add((sequence, true));
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
        // A scored prompt chunks in runs of its own, a few positions each: newcomers are admitted meanwhile.
        var chunking = _running.FirstOrDefault(s => s.Status == SequenceStatus.Prefilling && s.PromptLogprobs is null);
        var scoring = _running.FirstOrDefault(s => s.Status == SequenceStatus.Prefilling && s.PromptLogprobs is not null);
        var preempted = chunking is null ? PreemptForWaitingTenant(scoringBusy: scoring is not null) : null;
        var decode = _running
            .Where(s => s.Status == SequenceStatus.Running)
            .Select(s => new ScheduledSequence(s, 1))
            .ToList();
        foreach (var (sequence, _) in decode)
        {
            Charge(sequence, 1);
        }

        var prefill = chunking is not null ? [NextChunk(chunking)] : AdmitWaiting(scoringBusy: scoring is not null);
        return new SchedulerPlan(prefill, decode)
        {
            Preempted = preempted is null ? [] : [preempted],
            Scoring = scoring is null ? [] : [NextChunk(scoring)],
        };
    }

    public void Finish(Sequence sequence)
    {
        if (_running.Remove(sequence))
        {
            var tenant = sequence.Request.Tenant;
            if (--_runningByTenant[tenant] == 0)
            {
                _runningByTenant.Remove(tenant);
            }
        }

        _kvCache.Free(sequence.Id);
        sequence.Status = SequenceStatus.Finished;
        _interactive.PruneIdle(RunningOf);
        _batch.PruneIdle(RunningOf);
    }

    /// <summary>Tenants whose fair-queue state is kept, in both classes (bounded by the tenants active lately).</summary>
    public int TrackedTenants => _interactive.TenantCount + _batch.TenantCount;

    /// <summary>
    /// When the next sequence to admit belongs to a tenant with nothing running and the batch or the KV cache has no
    /// room for it, sends the newest decoding sequence of the tenant holding the most slots back to its queue (at most
    /// one per step). A batch-class newcomer never displaces an interactive sequence.
    /// </summary>
    /// <param name="scoringBusy">A prompt is being scored: a scored newcomer could not start, so it displaces nobody.</param>
    private Sequence? PreemptForWaitingTenant(bool scoringBusy)
    {
        if (!_options.PreemptForFairness || PeekNext(Eligible(scoringBusy)) is not var (_, next) || RunningOf(next.Request.Tenant) > 0)
        {
            return null;
        }

        var needed = next.ReservedTokens(_contextLength);
        if (_running.Count < _options.MaxBatchSize && _kvCache.FreeTokens >= needed)
        {
            return null; // it will be admitted without displacing anyone
        }

        var victim = _running
            .Where(s => s.Status == SequenceStatus.Running && RunningOf(s.Request.Tenant) >= 2)
            .Where(s => next.Request.Priority == RequestPriority.Interactive || s.Request.Priority == RequestPriority.Batch)
            .OrderByDescending(s => RunningOf(s.Request.Tenant))
            .ThenByDescending(s => s.Arrival)
            .FirstOrDefault();
        if (victim is null || _kvCache.FreeTokens + victim.ReservedTokens(_contextLength) < needed)
        {
            return null;
        }

        _prefix?.Save(victim); // its KV so far, so that it resumes from the cache rather than recomputing everything
        Finish(victim);
        _releaseKv(victim.Id);
        victim.Status = SequenceStatus.Waiting;
        victim.Computed = 0;
        victim.Preemptions++;
        QueueOf(victim.Request.Priority).Return(victim);
        return victim;
    }

    /// <summary>While a prompt is scored, another waits its turn and the plain ones behind it pass it by.</summary>
    private static Func<Sequence, bool>? Eligible(bool scoringBusy) => scoringBusy ? s => s.PromptLogprobs is null : null;

    private FairQueue QueueOf(RequestPriority priority) => priority == RequestPriority.Batch ? _batch : _interactive;

    private int RunningOf(string tenant) => _runningByTenant.GetValueOrDefault(tenant);

    /// <summary>Counts tokens a sequence got for its tenant's fair share (also those a speculative step added).</summary>
    public void Charge(Sequence sequence, int tokens) => QueueOf(sequence.Request.Priority).Charge(sequence.Request.Tenant, tokens);

    /// <summary>Interactive first; batch when only batch waits or when interactive has had its run of admissions.</summary>
    private (FairQueue Queue, Sequence Sequence)? PeekNext(Func<Sequence, bool>? eligible = null)
    {
        var interactive = _interactive.Peek(RunningOf, eligible);
        var batch = _batch.Peek(RunningOf, eligible);
        if (batch is not null && (interactive is null || _interactiveStreak >= _options.InteractivePerBatch))
        {
            return (_batch, batch);
        }

        return interactive is null ? null : (_interactive, interactive);
    }

    private ScheduledSequence NextChunk(Sequence sequence, bool admitted = false)
    {
        var count = Math.Min(sequence.Tokens.Count - sequence.Computed, _options.PrefillTokenBudget);
        if (sequence.PromptLogprobs is not null)
        {
            count = Math.Min(count, _scoringChunk);
        }

        Charge(sequence, count);
        return new ScheduledSequence(sequence, count) { Admitted = admitted };
    }

    /// <param name="scoringBusy">A scored prompt is being computed: another waits for it (one scoring run a step).</param>
    private List<ScheduledSequence> AdmitWaiting(bool scoringBusy)
    {
        var admitted = new List<ScheduledSequence>();
        var longestPrompt = 0;
        var eligible = Eligible(scoringBusy);
        while (_running.Count < _options.MaxBatchSize && PeekNext(eligible) is var (queue, sequence))
        {
            // A cached prefix is copied in rather than computed; a row that starts with a past runs alone. So does a prompt
            // being scored: every position of it returns logits, and it is computed whole (a cached block has no logits).
            var scoring = sequence.PromptLogprobs is not null;
            var cached = scoring ? [] : _prefix?.Match(sequence) ?? [];
            if ((cached.Count > 0 || scoring) && admitted.Count > 0)
            {
                break;
            }

            var length = sequence.Tokens.Count - sequence.Computed; // a preempted sequence recomputes what it had generated too
            // Newcomers are prefilled together, padded to the longest prompt: count padded tokens against the budget.
            var paddedTokens = Math.Max(longestPrompt, length) * (admitted.Count + 1);
            if (admitted.Count > 0 && paddedTokens > _options.PrefillTokenBudget)
            {
                break;
            }

            if (_kvCache.TryAllocate(sequence.Id, sequence.ReservedTokens(_contextLength)) is null)
            {
                break;
            }

            queue.Remove(sequence);
            _interactiveStreak = queue == _batch || _batch.Count == 0 ? 0 : _interactiveStreak + 1;
            _running.Add(sequence);
            _runningByTenant[sequence.Request.Tenant] = RunningOf(sequence.Request.Tenant) + 1;
            sequence.Status = SequenceStatus.Prefilling;
            _prefix?.Load(sequence, cached);
            if (sequence.Computed > 0 || length > _options.PrefillTokenBudget || scoring)
            {
                // A prompt longer than the budget is prefilled alone, one chunk per step; so is the rest of a cached one,
                // and a scored one.
                admitted.Add(NextChunk(sequence, admitted: true));
                break;
            }

            Charge(sequence, length);
            admitted.Add(new ScheduledSequence(sequence, length) { Admitted = true });
            longestPrompt = Math.Max(longestPrompt, length);
        }

        return admitted;
    }
}
