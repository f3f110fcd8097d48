namespace Appliance.Api.Batches;

/// <summary>The Batch API's settings (configuration section "Batches").</summary>
public sealed record BatchOptions
{
    public const string Section = "Batches";

    /// <summary>Off: /v1/files and /v1/batches answer 404 and no node runs batches.</summary>
    public bool Enabled { get; init; } = true;

    /// <summary>
    /// Off: this node answers the Batch API but runs no batch (a node kept for interactive work; others run them).
    /// </summary>
    public bool Run { get; init; } = true;

    /// <summary>The most batches one owner may have open (validating, running, cancelling or finalizing) at once.</summary>
    public int MaxOpenPerOwner { get; init; } = 16;

    /// <summary>
    /// How long a node runs one batch while others wait before it lets that one go and takes the longest-waiting
    /// (the one run least recently), so that one owner's long batch does not hold every other's until it expires.
    /// </summary>
    public TimeSpan TimeSlice { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>The largest input file accepted (OpenAI's limit is 200 MB; one stored value holds at most 1 GB).</summary>
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
