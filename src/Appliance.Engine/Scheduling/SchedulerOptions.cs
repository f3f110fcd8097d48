namespace Appliance.Engine.Scheduling;

/// <summary>Limits of one engine's scheduler.</summary>
public sealed record SchedulerOptions
{
    /// <summary>Most sequences in the running batch (also bounded by the runner).</summary>
    public int MaxBatchSize { get; init; } = 8;

    /// <summary>
    /// Most prompt tokens (counted with padding) one prefill run may process. Bounds how long running streams wait
    /// while newcomers are prefilled; longer prompts are prefilled alone in chunks of this size.
    /// </summary>
    public int PrefillTokenBudget { get; init; } = 1024;

    /// <summary>Requests that may wait for a slot before new ones are refused.</summary>
    public int MaxQueuedRequests { get; init; } = 256;

    /// <summary>KV cache capacity in tokens; null means batch size times context length.</summary>
    public int? KvCacheTokens { get; init; }

    public string? Validate()
    {
        if (MaxBatchSize < 1)
        {
            return "MaxBatchSize must be at least 1";
        }

        if (PrefillTokenBudget < 16)
        {
            return "PrefillTokenBudget must be at least 16";
        }

        if (MaxQueuedRequests < 1)
        {
            return "MaxQueuedRequests must be at least 1";
        }

        return KvCacheTokens is < 1 ? "KvCacheTokens must be at least 1 when set" : null;
    }
}
