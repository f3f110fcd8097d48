using System.Security.Claims;
using Appliance.Api.Quotas;
using Appliance.Audit.Stores;
using Appliance.Host.Options;
using Appliance.Identity;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Quotas;

/// <summary>
/// Counts each user's and team's requests, running requests and tokens in fixed UTC windows and refuses a request when
/// one of the caller's quotas is used up. A request is admitted while usage is below the limit (its own tokens are
/// only known when it ends), so a quota can be overrun by at most the requests running when it was reached.
/// </summary>
internal sealed class QuotaLedger(IOptions<QuotaOptions> options, Audit.CallerTeam teams, IQuotaRefusals metrics, TimeProvider time) : IQuotaGate
{
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Scope, string Key), QuotaWindow> _windows = [];
    private DateTimeOffset _prunedAt;

    /// <summary>Callers with a window kept (for tests: those with usage today or a stream open, not everyone ever seen).</summary>
    public int TrackedCallers
    {
        get
        {
            lock (_gate)
            {
                return _windows.Count;
            }
        }
    }

    public IQuotaLease? TryEnter(ClaimsPrincipal user, out QuotaRefusal? refusal)
    {
        var callers = Callers(user);
        var now = time.GetUtcNow();
        lock (_gate)
        {
            PruneIdle(now);
            foreach (var (scope, key, who, limits) in callers)
            {
                if (Exceeded(Window(scope, key), limits, scope, who, now) is { } exceeded)
                {
                    refusal = exceeded;
                    metrics.QuotaRefused(exceeded.Quota, scope);
                    return null;
                }
            }

            foreach (var (scope, key, who, limits) in callers)
            {
                var window = Window(scope, key);
                window.AddRequest(now);
                window.Concurrent++;
                window.LastSeen = (who, limits);
            }
        }

        refusal = null;
        return new Lease(this, [.. callers.Select(c => (c.Scope, c.Key))], now);
    }

    public IReadOnlyList<QuotaStanding> Standings()
    {
        var quotas = options.Value;
        var now = time.GetUtcNow();
        lock (_gate)
        {
            return [.. _windows.OrderBy(w => w.Key.Scope, StringComparer.Ordinal).ThenBy(w => w.Key.Key, StringComparer.Ordinal).Select(w =>
            {
                var window = w.Value;
                var (who, limits) = window.LastSeen ?? (w.Key.Key, w.Key.Scope == "team"
                    ? quotas.Teams.GetValueOrDefault(w.Key.Key)?.Over(quotas.Team) ?? quotas.Team
                    : quotas.Users.GetValueOrDefault(w.Key.Key)?.Over(quotas.User) ?? quotas.User);
                return new QuotaStanding(w.Key.Scope, who, window.MinuteRequests(now), Limit(limits.RequestsPerMinute), window.MinuteTokens(now),
                    Limit(limits.TokensPerMinute), window.DayTokens(now), Limit(limits.TokensPerDay), window.Concurrent, Limit(limits.ConcurrentStreams));
            })];
        }
    }

    private static long? Limit(long? value) => value is > 0 ? value : null;

    public QuotaHeadroom Headroom(ClaimsPrincipal user)
    {
        var callers = Callers(user);
        var now = time.GetUtcNow();
        var nextMinute = QuotaWindow.MinuteOf(now).AddMinutes(1);
        var nextDay = QuotaWindow.DayOf(now).AddDays(1);
        var requests = new List<QuotaAllowance>();
        var tokens = new List<QuotaAllowance>();
        lock (_gate)
        {
            foreach (var (scope, key, _, limits) in callers)
            {
                var window = _windows.GetValueOrDefault((scope, key)); // none yet: nothing used
                Add(requests, limits.RequestsPerMinute, window?.MinuteRequests(now) ?? 0, nextMinute);
                Add(tokens, limits.TokensPerMinute, window?.MinuteTokens(now) ?? 0, nextMinute);
                Add(tokens, limits.TokensPerDay, window?.DayTokens(now) ?? 0, nextDay);
            }
        }

        // The limit with the least left is the one the caller meets first; on a tie, the one that resets last.
        static QuotaAllowance? Tightest(List<QuotaAllowance> allowances) =>
            allowances.OrderBy(a => a.Remaining).ThenByDescending(a => a.ResetsAt).FirstOrDefault();
        return new QuotaHeadroom(Tightest(requests), Tightest(tokens));

        static void Add(List<QuotaAllowance> allowances, long? limit, long used, DateTimeOffset resetsAt)
        {
            if (Limit(limit) is { } max)
            {
                allowances.Add(new QuotaAllowance(max, Math.Max(0, max - used), resetsAt));
            }
        }
    }

    /// <summary>
    /// Once a minute, forgets callers with no stream open and no usage this minute or today (here or, as last read,
    /// on other nodes): a fresh window says the same. Called under the lock.
    /// </summary>
    private void PruneIdle(DateTimeOffset now)
    {
        if (now - _prunedAt < TimeSpan.FromMinutes(1))
        {
            return;
        }

        _prunedAt = now;
        foreach (var idle in _windows.Where(w => w.Value.Concurrent == 0 && w.Value.MinuteRequests(now) == 0 && w.Value.DayTokens(now) == 0).Select(w => w.Key).ToList())
        {
            _windows.Remove(idle);
        }
    }

    /// <summary>Adds this node's usage since the start of the day, read from the audit log at start.</summary>
    public void Seed(IReadOnlyList<ConsumptionRow> today, IReadOnlyList<ConsumptionRow> thisMinute)
    {
        var now = time.GetUtcNow();
        lock (_gate)
        {
            foreach (var (key, day, minute) in Join(today, thisMinute))
            {
                Window(key.Scope, key.Key).Seed(now, day.Tokens, minute.Requests, minute.Tokens);
            }
        }
    }

    /// <summary>Replaces the other nodes' usage in the given windows (read from the shared PostgreSQL audit store).</summary>
    public void SetRemote(DateTimeOffset minute, DateTimeOffset day, IReadOnlyList<ConsumptionRow> today, IReadOnlyList<ConsumptionRow> thisMinute)
    {
        lock (_gate)
        {
            foreach (var window in _windows.Values)
            {
                window.SetRemote(minute, day, 0, 0, 0);
            }

            foreach (var (key, dayUse, minuteUse) in Join(today, thisMinute))
            {
                Window(key.Scope, key.Key).SetRemote(minute, day, minuteUse.Requests, minuteUse.Tokens, dayUse.Tokens);
            }
        }
    }

    private static IEnumerable<((string Scope, string Key) Key, (long Requests, long Tokens) Day, (long Requests, long Tokens) Minute)> Join(
        IReadOnlyList<ConsumptionRow> today, IReadOnlyList<ConsumptionRow> thisMinute)
    {
        var day = Totals(today);
        var minute = Totals(thisMinute);
        return day.Keys.Union(minute.Keys).Select(k => (k, day.GetValueOrDefault(k), minute.GetValueOrDefault(k)));
    }

    private static Dictionary<(string, string), (long Requests, long Tokens)> Totals(IReadOnlyList<ConsumptionRow> rows)
    {
        var totals = new Dictionary<(string, string), (long Requests, long Tokens)>();
        foreach (var row in rows)
        {
            foreach (var key in new[] { row.User is { } u ? ("user", u) : default, row.Team is { } t ? ("team", t) : default }.Where(k => k.Item1 is not null))
            {
                var (requests, tokens) = totals.GetValueOrDefault(key);
                totals[key] = (requests + row.Requests, tokens + row.Tokens);
            }
        }

        return totals;
    }

    private List<(string Scope, string Key, string Who, QuotaLimits Limits)> Callers(ClaimsPrincipal user)
    {
        var quotas = options.Value;
        var callers = new List<(string, string, string, QuotaLimits)>();
        var subject = user.FindFirst(ApplianceClaims.Subject)?.Value;
        var name = user.Identity?.Name;
        if (subject is not null)
        {
            // Counted by username (unique in a Keycloak realm) where there is one: an API key acts under its owner's
            // name, so its owner's tokens and every key issued to the owner draw on one quota, not one each.
            var own = (name is not null ? quotas.Users.GetValueOrDefault(name) : null) ?? quotas.Users.GetValueOrDefault(subject);
            callers.Add(("user", name ?? subject, name ?? subject, own?.Over(quotas.User) ?? quotas.User));
        }

        if (teams.Of(user) is { } team)
        {
            callers.Add(("team", team, team, quotas.Teams.GetValueOrDefault(team)?.Over(quotas.Team) ?? quotas.Team));
        }

        return callers;
    }

    private static QuotaRefusal? Exceeded(QuotaWindow window, QuotaLimits limits, string scope, string who, DateTimeOffset now)
    {
        var nextMinute = QuotaWindow.MinuteOf(now).AddMinutes(1);
        if (limits.ConcurrentStreams is > 0 and var streams && window.Concurrent >= streams)
        {
            return new QuotaRefusal("concurrent_streams", scope, who, window.Concurrent, streams, now.AddSeconds(1));
        }

        if (limits.RequestsPerMinute is > 0 and var requests && window.MinuteRequests(now) >= requests)
        {
            return new QuotaRefusal("requests_per_minute", scope, who, window.MinuteRequests(now), requests, nextMinute);
        }

        if (limits.TokensPerMinute is > 0 and var perMinute && window.MinuteTokens(now) >= perMinute)
        {
            return new QuotaRefusal("tokens_per_minute", scope, who, window.MinuteTokens(now), perMinute, nextMinute);
        }

        return limits.TokensPerDay is > 0 and var perDay && window.DayTokens(now) >= perDay
            ? new QuotaRefusal("tokens_per_day", scope, who, window.DayTokens(now), perDay, QuotaWindow.DayOf(now).AddDays(1))
            : null;
    }

    private QuotaWindow Window(string scope, string key)
    {
        if (!_windows.TryGetValue((scope, key), out var window))
        {
            window = new QuotaWindow();
            _windows[(scope, key)] = window;
        }

        return window;
    }

    private void Release(IReadOnlyList<(string Scope, string Key)> keys, long tokens)
    {
        var now = time.GetUtcNow();
        lock (_gate)
        {
            foreach (var (scope, key) in keys)
            {
                var window = Window(scope, key);
                window.Concurrent--;
                window.AddTokens(now, tokens);
            }
        }
    }

    /// <summary>A request admitted and then not run: its stream slot is freed and it no longer counts as a request.</summary>
    private void Refund(IReadOnlyList<(string Scope, string Key)> keys, DateTimeOffset admittedAt)
    {
        var now = time.GetUtcNow();
        lock (_gate)
        {
            foreach (var (scope, key) in keys)
            {
                var window = Window(scope, key);
                window.Concurrent--;
                window.RemoveRequest(admittedAt, now);
            }
        }
    }

    private sealed class Lease(QuotaLedger ledger, IReadOnlyList<(string Scope, string Key)> keys, DateTimeOffset admittedAt) : IQuotaLease
    {
        private long _tokens;
        private int _released;

        public void Charge(long tokens) => _tokens = tokens;

        public void Refund()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                ledger.Refund(keys, admittedAt);
            }
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                ledger.Release(keys, _tokens);
            }
        }
    }
}
