using Appliance.Audit.Chain;

namespace Appliance.Audit.Stores;

/// <summary>Which entries an auditor asks for; every filter is optional.</summary>
public sealed record AuditQuery
{
    public DateTimeOffset? From { get; init; }

    public DateTimeOffset? To { get; init; }

    public string? Username { get; init; }

    public string? Client { get; init; }

    public string? Model { get; init; }

    public string? Kind { get; init; }

    /// <summary>"accepted" (status below 400) or "refused" (400 and above).</summary>
    public string? Outcome { get; init; }

    /// <summary>Entries after this sequence (paging).</summary>
    public long AfterSequence { get; init; }

    /// <summary>Entries before this sequence (paging backwards, with <see cref="NewestFirst"/>).</summary>
    public long? BeforeSequence { get; init; }

    /// <summary>The newest matching entries first instead of the oldest.</summary>
    public bool NewestFirst { get; init; }

    public int Limit { get; init; } = 100;
}

/// <summary>
/// Usage of one day for one user, team, model or client on one model: the completed requests and their tokens. The
/// model is kept apart in every grouping because each model has its own price (Pricing).
/// </summary>
public sealed record UsageRow(string Day, string? Key, string Model, long Requests, long PromptTokens, long CompletionTokens);

/// <summary>
/// What one caller (its username, or its subject when it has none; with the team recorded for the request) consumed
/// since a time: requests accepted and tokens of requests completed. Quotas are counted from it after a restart and
/// across nodes. By username, so that a user's own tokens and every API key issued to that user share one quota.
/// </summary>
public sealed record ConsumptionRow(string? User, string? Team, long Requests, long Tokens);

/// <summary>Where audit entries are kept (a pluggable strategy with a name: "sqlite", later "postgresql").</summary>
public interface IAuditStore : IDisposable
{
    string Name { get; }

    /// <summary>The last entry of a node's chain, or null when the chain is empty.</summary>
    (long Sequence, string Hash)? Head(string node);

    /// <summary>Stores entries (and a checkpoint) in one transaction: all of them are durable, or none is.</summary>
    void Append(IReadOnlyList<AuditEntry> entries, Checkpoint? checkpoint);

    IReadOnlyList<AuditEntry> Query(string node, AuditQuery query);

    /// <summary>A node's chain in sequence order (after <paramref name="afterSequence"/>), for verification and export.</summary>
    IEnumerable<AuditEntry> Chain(string node, long afterSequence = 0);

    IReadOnlyList<Checkpoint> Checkpoints(string node);

    /// <summary>The latest time any entry after <paramref name="afterSequence"/> through <paramref name="throughSequence"/> carries, or null when there is none.</summary>
    DateTimeOffset? NewestTime(string node, long afterSequence, long throughSequence);

    /// <summary>A node's last witness entry (<see cref="AuditKinds.Witness"/>) at or before an entry, or null.</summary>
    AuditEntry? LatestWitness(string node, long throughSequence);

    /// <summary>The latest checkpoint of every chain the store holds.</summary>
    IReadOnlyList<Checkpoint> LatestCheckpoints();

    /// <summary>The latest retention record of a node (it covers every earlier one), or null.</summary>
    RetentionRecord? Retention(string node);

    /// <summary>
    /// Claims another node's chain for retention while no process writes it (a node retired, or renamed), or null when
    /// one does: retention must not race that chain's own writer. Dispose to release it; hold it briefly (a node that
    /// starts waits for it).
    /// </summary>
    IDisposable? TryClaimIdleChain(string node) => null;

    /// <summary>In one transaction: stores the signed record and removes the entries and checkpoints it covers.</summary>
    void ApplyRetention(RetentionRecord record);

    /// <summary>
    /// Completed model requests per UTC day, <paramref name="groupBy"/> (user, team, model or client) and model, for
    /// chargeback, on one node's chain or (<paramref name="node"/> null) on every chain the store holds.
    /// </summary>
    /// <remarks>
    /// <paramref name="teams"/>, when given, keeps only the requests of those teams (a team lead's view); <paramref name="user"/>
    /// only those of that username (a person's own view).
    /// </remarks>
    IReadOnlyList<UsageRow> Usage(string? node, DateTimeOffset from, DateTimeOffset to, string groupBy, IReadOnlyList<string>? teams = null, string? user = null);

    /// <summary>
    /// Requests accepted and tokens completed per subject and team since <paramref name="since"/>, on one node
    /// (<paramref name="onlyNode"/>) or on every node but one (<paramref name="exceptNode"/>), up to <paramref name="before"/> when given.
    /// </summary>
    IReadOnlyList<ConsumptionRow> Consumption(DateTimeOffset since, string? onlyNode, string? exceptNode, DateTimeOffset? before = null);

    /// <summary>The nodes whose chains this store holds (entries, checkpoints or a retention record), in name order.</summary>
    IReadOnlyList<string> Nodes();
}
