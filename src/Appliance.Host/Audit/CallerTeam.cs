using System.Collections.Concurrent;
using System.Security.Claims;
using Appliance.Host.Options;
using Appliance.Host.Quotas;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Audit;

/// <summary>
/// The caller's team, one rule for the audit log, quotas, fair queueing and the prefix cache: of the values of
/// Audit:TeamClaim (Keycloak groups) that start with Audit:TeamPrefix, one the administrators configured (a team quota
/// or tenant weight) before the others, then the first in ordinal order, so a user in two groups is always counted
/// under the same one whatever order a token lists them in, and under the team whose quota was set for it.
/// </summary>
internal sealed partial class CallerTeam(IOptions<AuditOptions> options, IOptions<QuotaOptions> quotas, IOptions<PoolOptions> pool, ILogger<CallerTeam> logger)
{
    private const int MaxReported = 10_000;
    private readonly ConcurrentDictionary<string, byte> _reported = new(StringComparer.Ordinal);

    /// <summary>The team the caller is counted under, or null when the caller is in none.</summary>
    public string? Of(ClaimsPrincipal user)
    {
        var teams = All(user);

        if (teams.Count == 0)
        {
            return null;
        }

        var team = teams.Select(ConfiguredForm).FirstOrDefault(t => t is not null) ?? teams[0];
        if (teams.Count > 1 && user.Identity?.Name is { } name && _reported.Count < MaxReported && _reported.TryAdd(name, 0))
        {
            LogSeveralTeams(logger, name, string.Join(", ", teams), team);
        }

        return team;
    }

    /// <summary>
    /// The name under which a team quota or tenant weight was configured for this claim value: the value itself, or
    /// the same group with or without its leading '/' (Keycloak's full path or not, as AllowedGroups also takes
    /// either), so that "research" configured applies to "/research" in tokens instead of never; null when neither is.
    /// </summary>
    private string? ConfiguredForm(string team)
    {
        bool Configured(string name) => quotas.Value.Teams.ContainsKey(name) || pool.Value.TenantWeights.ContainsKey(name);
        var other = team.StartsWith('/') ? team[1..] : "/" + team;
        return Configured(team) ? team : other.Length > 0 && Configured(other) ? other : null;
    }

    /// <summary>A start failure for each configured team name that is no team under <paramref name="prefix"/> (its setting would never apply).</summary>
    public static IEnumerable<string> Unmatched(IEnumerable<string> teams, string setting, string prefix) =>
        teams.Where(team => !team.StartsWith(prefix, StringComparison.Ordinal) && !team.StartsWith("user:", StringComparison.Ordinal))
            .Select(team => $"{setting}:{team} names no team: teams are the Audit:TeamClaim values starting with Audit:TeamPrefix '{prefix}'");

    /// <summary>Every team the caller is in, in ordinal order.</summary>
    public IReadOnlyList<string> All(ClaimsPrincipal user)
    {
        var prefix = options.Value.TeamPrefix;
        return [.. user.FindAll(options.Value.TeamClaim).Select(c => c.Value)
            .Where(v => v.Length > 0 && v.StartsWith(prefix, StringComparison.Ordinal))
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
    }

    [LoggerMessage(EventId = 4050, Level = LogLevel.Warning,
        Message = "{User} is in several teams ({Teams}): usage, quotas and fair queueing count it under {Team}; Audit:TeamPrefix narrows which groups are teams")]
    private static partial void LogSeveralTeams(ILogger logger, string user, string teams, string team);
}
