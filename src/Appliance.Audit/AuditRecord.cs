namespace Appliance.Audit;

/// <summary>What kind of access an audit record describes.</summary>
public static class AuditKinds
{
    /// <summary>A request passed every check and is about to be answered; stored before its first byte is sent.</summary>
    public const string Accepted = "request.accepted";

    /// <summary>An accepted request ended (finished, failed or cancelled), with its usage.</summary>
    public const string Completed = "request.completed";

    /// <summary>
    /// A request used a model's tokenizer only (counting or tokenizing text): the model is named, nothing ran, and
    /// usage reports and quotas do not count it.
    /// </summary>
    public const string Tokenized = "request.tokenized";

    /// <summary>A request was refused: no or bad credential, missing role, model not allowed, invalid input, overload.</summary>
    public const string Refused = "request.refused";

    /// <summary>An administrator changed something (API keys, models, the pool).</summary>
    public const string Admin = "admin.action";

    /// <summary>Someone read or exported the audit log.</summary>
    public const string AuditRead = "audit.read";

    /// <summary>The retention policy removed old sealed entries (the signed retention record says which).</summary>
    public const string Retention = "audit.retention";

    /// <summary>
    /// A node's chain records the other nodes' latest signed checkpoints it saw (see ChainWitness), so that deleting or
    /// cutting another node's chain shows.
    /// </summary>
    public const string Witness = "audit.witness";
}

/// <summary>
/// One audited access: who (subject, username, client, roles, address), what (endpoint, model and its digest and label),
/// the outcome and how much. Prompt and completion text are part of it only encrypted, for models configured so.
/// </summary>
public sealed record AuditRecord
{
    public required DateTimeOffset Time { get; init; }

    public required string Kind { get; init; }

    public string? RequestId { get; init; }

    public string? Subject { get; init; }

    public string? Username { get; init; }

    public string? Client { get; init; }

    /// <summary>The caller's team for chargeback (the first value of the configured team claim, e.g. a Keycloak group).</summary>
    public string? Team { get; init; }

    public IReadOnlyList<string> Roles { get; init; } = [];

    public string? SourceIp { get; init; }

    public string? Method { get; init; }

    public string? Endpoint { get; init; }

    public string? Model { get; init; }

    public string? ModelDigest { get; init; }

    public string? Classification { get; init; }

    public int? Status { get; init; }

    public string? ErrorCode { get; init; }

    public string? FinishReason { get; init; }

    public int? PromptTokens { get; init; }

    public int? CompletionTokens { get; init; }

    public double? QueueMs { get; init; }

    public double? TimeToFirstTokenMs { get; init; }

    public double? DurationMs { get; init; }

    /// <summary>Why a request was refused, or what an administrator did; never a secret.</summary>
    public string? Detail { get; init; }

    /// <summary>Prompt and completion, only for models that record content, and only sealed (see ContentVault).</summary>
    public string? Content { get; init; }
}

/// <summary>A record in the chain: its position, the hash of the one before, and its own hash over both.</summary>
public sealed record AuditEntry(long Sequence, string Node, AuditRecord Record, string PreviousHash, string Hash);
