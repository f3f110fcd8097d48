namespace Appliance.Engine.Scheduling;

/// <summary>Limits of one engine's scheduler.</summary>
public sealed record SchedulerOptions
{
    /// <summary>
    /// How long a replica whose model run failed is ranked after the healthy ones (unless a run succeeds sooner): long
    /// enough to route around a failing device, short enough that one transient failure does not idle a replica for good.
    /// </summary>
    public TimeSpan FailedRunProbation { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Longest one model run may take before it is interrupted and its requests fail (a hung device or driver would
    /// otherwise hold the engine, and every unload, reload and shutdown waiting for it, for good). Far above any real
    /// run: a prefill chunk takes milliseconds on a GPU and seconds on a CPU.
    /// </summary>
    public TimeSpan RunTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long stopping waits for the engine thread after interrupting its run. A native call that ignores the
    /// interrupt keeps the thread; the runner is then left alive (its memory held) rather than freed under it.
    /// </summary>
    public TimeSpan StopTimeout { get; init; } = TimeSpan.FromSeconds(10);

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

    /// <summary>Fair-queueing weight per tenant (a tenant with weight 2 gets twice the tokens of one with 1 when both wait).</summary>
    public IReadOnlyDictionary<string, double> TenantWeights { get; init; } = new Dictionary<string, double>();

    /// <summary>Weight of a tenant not named in <see cref="TenantWeights"/>.</summary>
    public double DefaultTenantWeight { get; init; } = 1;

    /// <summary>
    /// While both classes wait, at most this many interactive admissions in a row before a batch one: interactive goes
    /// first, batch is never starved.
    /// </summary>
    public int InteractivePerBatch { get; init; } = 4;

    /// <summary>
    /// When the batch (or KV cache) is full and a tenant with nothing running waits, send the newest running sequence
    /// of the tenant holding the most back to the queue (its tokens so far are recomputed when it returns): a flood by
    /// one tenant cannot keep another's first token waiting for a whole generation.
    /// </summary>
    public bool PreemptForFairness { get; init; } = true;

    /// <summary>
    /// The first wait before an engine whose loop crashed starts again; each crash soon after the last doubles it, up
    /// to <see cref="MaxRestartBackoff"/>.
    /// </summary>
    public TimeSpan RestartBackoff { get; init; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxRestartBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Prompt-lookup speculative decoding: while one request decodes alone, up to this many tokens that followed the
    /// latest earlier occurrence of its last tokens are proposed and verified in one run; 0 switches it off. Each
    /// position is sampled as plain decoding samples it, so outputs are those of plain decoding up to the floating-point
    /// difference between a one-token run and a several-token one (as between a prompt computed whole or in chunks).
    /// </summary>
    public int SpeculativeTokens { get; init; }

    /// <summary>Longest n-gram matched to find a draft (down to 2 tokens).</summary>
    public int SpeculativeNgram { get; init; } = 3;

    /// <summary>Where drafts come from; null: prompt lookup with <see cref="SpeculativeNgram"/>.</summary>
    public Speculation.IDraftProposer? DraftProposer { get; init; }

    public double WeightOf(string tenant) => TenantWeights.TryGetValue(tenant, out var weight) ? weight : DefaultTenantWeight;

    public string? Validate()
    {
        if (DefaultTenantWeight <= 0 || TenantWeights.Values.Any(w => w <= 0 || double.IsNaN(w) || double.IsInfinity(w)))
        {
            return "tenant weights must be positive numbers";
        }

        if (InteractivePerBatch < 1)
        {
            return "InteractivePerBatch must be at least 1";
        }

        if (RunTimeout <= TimeSpan.Zero || StopTimeout < TimeSpan.Zero)
        {
            return "RunTimeout must be positive and StopTimeout not negative";
        }

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

        if (SpeculativeTokens is < 0 or > 64 || SpeculativeNgram is < 2 or > 16)
        {
            return "SpeculativeTokens must be 0 to 64 and SpeculativeNgram 2 to 16";
        }

        return KvCacheTokens is < 1 ? "KvCacheTokens must be at least 1 when set" : null;
    }
}
