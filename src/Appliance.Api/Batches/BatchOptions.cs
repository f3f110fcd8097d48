namespace Appliance.Api.Batches;

/// <summary>The Batch API's settings (configuration section "Batches").</summary>
public sealed record BatchOptions
{
    public const string Section = "Batches";

    /// <summary>Off: /v1/files and /v1/batches answer 404 and no node runs batches.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>The largest input file accepted (OpenAI's limit is 200 MB).</summary>
    public long MaxFileBytes { get; init; } = 100L * 1024 * 1024;

    /// <summary>The most requests one input file may hold (OpenAI's limit).</summary>
    public int MaxRequests { get; init; } = 50_000;

    /// <summary>How many of a batch's requests a node runs at once: the rest of the models' capacity stays for callers.</summary>
    public int Concurrency { get; init; } = 4;

    /// <summary>How often an idle node looks for a batch to run.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long a node holds a batch without renewing (it renews at a third of this): after a node stops mid-batch,
    /// another node (or the same one, restarted) takes the batch over within this time and runs what is left.
    /// </summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Finished batches and all files are deleted this long after they were created; 0 keeps them.</summary>
    public int RetentionDays { get; init; } = 30;
}
