namespace Appliance.Api.Batches;

/// <summary>
/// A batch: the input file's requests run in the background as their owner, at the owner's share of the models, each
/// audited and charged as if sent one by one. The states and timestamps are OpenAI's.
/// </summary>
public sealed record BatchJob
{
    public required string Id { get; init; }

    /// <summary>The username the batch's requests run as (also the owner of its files).</summary>
    public required string Owner { get; init; }

    public required string Endpoint { get; init; }

    public required string InputFileId { get; init; }

    public string CompletionWindow { get; init; } = "24h";

    public required DateTimeOffset CreatedAt { get; init; }

    public required DateTimeOffset ExpiresAt { get; init; }

    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    /// <summary>The creator's claims as authenticated then, which its requests carry (see BatchCaller).</summary>
    public required IReadOnlyList<KeyValuePair<string, string>> Claims { get; init; }

    /// <summary>The creator's address: where its requests came from, for their audit records.</summary>
    public string? SourceIp { get; init; }

    /// <summary>The Host the creator called: its requests carry it (host filtering lets them in as it let the creator).</summary>
    public string? Host { get; init; }

    public string Status { get; init; } = BatchStatus.Validating;

    public DateTimeOffset? InProgressAt { get; init; }

    public DateTimeOffset? FinalizingAt { get; init; }

    public DateTimeOffset? CompletedAt { get; init; }

    public DateTimeOffset? FailedAt { get; init; }

    public DateTimeOffset? ExpiredAt { get; init; }

    public DateTimeOffset? CancellingAt { get; init; }

    public DateTimeOffset? CancelledAt { get; init; }

    public string? OutputFileId { get; init; }

    public string? ErrorFileId { get; init; }

    public int Total { get; init; }

    public int Completed { get; init; }

    public int Failed { get; init; }

    public IReadOnlyList<BatchError> Errors { get; init; } = [];

    /// <summary>The tokens of the answered requests, summed once the batch has ended (null before).</summary>
    public BatchUsage? Usage { get; init; }

    [System.Text.Json.Serialization.JsonIgnore]
    public bool Finished => BatchStatus.IsFinal(Status);

    public static string NewId() => $"batch_{Guid.NewGuid():N}";
}

/// <summary>A batch's tokens, as OpenAI reports them: prompt (of which from the prefix cache) and generated (of which thought).</summary>
public sealed record BatchUsage(long InputTokens, long CachedTokens, long OutputTokens, long ReasoningTokens);

/// <summary>Why a batch failed validation (OpenAI's errors.data entries), or why one of its requests did not run.</summary>
public sealed record BatchError(string Code, string Message, string? Param = null, int? Line = null);

/// <summary>OpenAI's batch states.</summary>
public static class BatchStatus
{
    public const string Validating = "validating";
    public const string InProgress = "in_progress";
    public const string Finalizing = "finalizing";
    public const string Completed = "completed";
    public const string Failed = "failed";
    public const string Expired = "expired";
    public const string Cancelling = "cancelling";
    public const string Cancelled = "cancelled";

    /// <summary>States a runner still has work in: validating, running, cancelling or writing the output files.</summary>
    public static readonly string[] Open = [Validating, InProgress, Cancelling, Finalizing];

    public static bool IsFinal(string status) => status is Completed or Failed or Expired or Cancelled;
}
