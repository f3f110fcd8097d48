namespace Appliance.Host.Quotas;

/// <summary>Limits of one user or team; null (or 0) is no limit.</summary>
public sealed record QuotaLimits
{
    public long? TokensPerMinute { get; init; }

    public long? TokensPerDay { get; init; }

    public long? RequestsPerMinute { get; init; }

    public long? ConcurrentStreams { get; init; }

    /// <summary>Each limit this record sets, the other's where it sets none.</summary>
    public QuotaLimits Over(QuotaLimits fallback) => new()
    {
        TokensPerMinute = TokensPerMinute ?? fallback.TokensPerMinute,
        TokensPerDay = TokensPerDay ?? fallback.TokensPerDay,
        RequestsPerMinute = RequestsPerMinute ?? fallback.RequestsPerMinute,
        ConcurrentStreams = ConcurrentStreams ?? fallback.ConcurrentStreams,
    };

    public IEnumerable<string> Problems(string key)
    {
        foreach (var (name, value) in new[] { ("TokensPerMinute", TokensPerMinute), ("TokensPerDay", TokensPerDay), ("RequestsPerMinute", RequestsPerMinute), ("ConcurrentStreams", ConcurrentStreams) })
        {
            if (value is < 0)
            {
                yield return $"{key}:{name} must not be negative";
            }
        }
    }
}

/// <summary>
/// Quotas (configuration "Quotas"): defaults for every user and every team, overrides by username (or subject) and by
/// team. Minutes and days are fixed UTC windows, so a refusal can say exactly when the quota resets. Usage is counted
/// from the audit log at start (it survives a restart) and, with PostgreSQL, other nodes' usage is read every
/// <see cref="RefreshInterval"/>.
/// </summary>
public sealed record QuotaOptions
{
    public const string Section = "Quotas";

    public QuotaLimits User { get; init; } = new();

    public QuotaLimits Team { get; init; } = new();

    public Dictionary<string, QuotaLimits> Users { get; init; } = [];

    public Dictionary<string, QuotaLimits> Teams { get; init; } = [];

    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromSeconds(5);

    public IEnumerable<string> Validate() =>
        User.Problems("Quotas:User")
            .Concat(Team.Problems("Quotas:Team"))
            .Concat(Users.SelectMany(u => u.Value.Problems($"Quotas:Users:{u.Key}")))
            .Concat(Teams.SelectMany(t => t.Value.Problems($"Quotas:Teams:{t.Key}")))
            .Concat(RefreshInterval < TimeSpan.FromMilliseconds(100) ? ["Quotas:RefreshInterval must be at least 100 ms"] : []);
}
