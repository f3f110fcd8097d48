namespace Appliance.Engine.Scheduling;

/// <summary>
/// One sequence's work in a step: how many of its not-yet-computed tokens to run, and whether it left the waiting
/// queue this step (a newcomer, or a preempted sequence coming back; it may already hold a cached prefix).
/// </summary>
internal readonly record struct ScheduledSequence(Sequence Sequence, int TokenCount)
{
    public bool Admitted { get; init; }
}

/// <summary>
/// What one engine step runs: a prefill group (newcomers' prompts, or one long prompt's next chunk) and the
/// decode batch (every running sequence, one token each). They are separate model runs.
/// </summary>
internal sealed record SchedulerPlan(IReadOnlyList<ScheduledSequence> Prefill, IReadOnlyList<ScheduledSequence> Decode)
{
    /// <summary>Running sequences sent back to the queue this step (the runner must drop their KV state).</summary>
    public IReadOnlyList<Sequence> Preempted { get; init; } = [];

    /// <summary>
    /// The next chunk of a prompt being scored, after its first: a run of its own, beside admissions, so that a long
    /// scored prompt (a few positions a run) does not hold every newcomer back.
    /// </summary>
    public IReadOnlyList<ScheduledSequence> Scoring { get; init; } = [];

    public bool IsEmpty => Prefill.Count == 0 && Decode.Count == 0 && Scoring.Count == 0;
}
