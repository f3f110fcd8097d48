namespace Appliance.Host.Options;

/// <summary>The audit log (configuration section "Audit").</summary>
public sealed record AuditOptions
{
    public const string Section = "Audit";

    /// <summary>
    /// Off only for measuring what auditing costs, and only in the Development environment: a production node never
    /// serves unaudited.
    /// </summary>
    public bool Enabled { get; init; } = true;

    /// <summary>The store: "sqlite" (the embedded default, one node) or "postgresql" (several nodes, one chain each).</summary>
    public string Store { get; init; } = "sqlite";

    /// <summary>For Store=postgresql: an Npgsql connection string (put the password in a secret, not in this file).</summary>
    public string PostgresConnectionString { get; init; } = string.Empty;

    /// <summary>The SQLite file; empty: audit/audit.db in the data folder.</summary>
    public string SqlitePath { get; init; } = string.Empty;

    /// <summary>A size cap for the SQLite file; when reached, requests are refused (503) rather than served unaudited.</summary>
    public long? MaxSizeBytes { get; init; }

    /// <summary>The checkpoint signing key (PEM, ECDSA P-256); empty: audit/checkpoint-key.pem in the data folder, created on first start.</summary>
    public string CheckpointKeyPath { get; init; } = string.Empty;

    /// <summary>This node's name in the chain; empty: the machine name.</summary>
    public string NodeId { get; init; } = string.Empty;

    /// <summary>The token claim that names the caller's team (for example Keycloak groups): usage, quotas, fair queueing.</summary>
    public string TeamClaim { get; init; } = "groups";

    /// <summary>
    /// Only the claim's values starting with this are teams (e.g. "/teams/" for Keycloak groups under /teams); of
    /// several, the first in ordinal order counts. Empty: every value.
    /// </summary>
    public string TeamPrefix { get; init; } = string.Empty;

    public int CheckpointEvery { get; init; } = 1000;

    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromMinutes(1);

    public int MaxBatch { get; init; } = 512;

    public SyslogOptions Syslog { get; init; } = new();

    /// <summary>How long entries are kept (whole sealed segments are removed after it); null keeps them forever.</summary>
    public TimeSpan? Retention { get; init; }

    /// <summary>How often the retention policy runs.</summary>
    public TimeSpan RetentionCheckInterval { get; init; } = TimeSpan.FromHours(1);

    /// <summary>
    /// With PostgreSQL: how often the lock that makes this process its chain's only writer is checked, and taken again
    /// once a database restart or failover ended the session that held it.
    /// </summary>
    public TimeSpan NodeLockCheckInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Where the content keys live; empty: audit/content-keys in the data folder.</summary>
    public string ContentKeysFolder { get; init; } = string.Empty;

    /// <summary>"model": one content key per model; "classification": one per classification label.</summary>
    public string ContentKeyScope { get; init; } = "model";
}

/// <summary>Forwarding of audit entries to the customer's SIEM as RFC 5424 syslog (Audit:Syslog).</summary>
public sealed record SyslogOptions
{
    /// <summary>
    /// relp://host:port (rsyslog's RELP: each entry acknowledged, none lost), tcp://host:port (octet-counted framing,
    /// RFC 6587) or udp://host:port; empty: no forwarding.
    /// </summary>
    public string Target { get; init; } = string.Empty;

    public string AppName { get; init; } = "appliance";

    /// <summary>The structured-data id; replace 32473 (the documentation enterprise number) with your organisation's.</summary>
    public string StructuredDataId { get; init; } = "audit@32473";

    /// <summary>How long a RELP receiver may take to acknowledge a message before the connection is given up and opened again.</summary>
    public TimeSpan AnswerTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the forwarder looks for new entries when it has sent everything.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The largest datagram sent over UDP; a longer entry is cut and marked (the full entry stays in the log and in
    /// /audit/export). A UDP datagram holds at most 65,507 bytes; use TCP where entries carry recorded content.
    /// </summary>
    public int MaxUdpBytes { get; init; } = 65_000;
}
