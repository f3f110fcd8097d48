using System.Security.Claims;

namespace Appliance.Api.Quotas;

/// <summary>A quota the caller has used up: which one, whose, and when it frees up again.</summary>
public sealed record QuotaRefusal(string Quota, string Scope, string Who, long Used, long Limit, DateTimeOffset ResetsAt)
{
    public string Message => Quota == "concurrent_streams"
        ? $"Quota exceeded: {Scope} '{Who}' already has {Used} of {Limit} allowed concurrent requests running; retry when one ends."
        : $"Quota exceeded: {Quota.Replace('_', ' ')} for {Scope} '{Who}' ({Used} of {Limit} used); it resets at {ResetsAt.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}.";
}

/// <summary>An admitted request's hold on its caller's quotas; disposing it charges the request's tokens and frees its stream.</summary>
public interface IQuotaLease : IDisposable
{
    /// <summary>Sets the tokens to charge when the lease ends (prompt plus completion).</summary>
    void Charge(long tokens);

    /// <summary>Ends the lease for a request that was admitted and then not run (refused by the engine or the audit log): nothing charged, not counted.</summary>
    void Refund();
}

/// <summary>Where one user or team stands against its quotas now (limits null: none set).</summary>
public sealed record QuotaStanding(
    string Scope,
    string Who,
    long RequestsThisMinute,
    long? RequestsPerMinute,
    long TokensThisMinute,
    long? TokensPerMinute,
    long TokensToday,
    long? TokensPerDay,
    long Running,
    long? ConcurrentStreams);

/// <summary>One limit as a caller's client sees it: how much it allows, how much is left and when its window starts again.</summary>
public sealed record QuotaAllowance(long Limit, long Remaining, DateTimeOffset ResetsAt);

/// <summary>
/// The caller's tightest request and token limits now (of its own and its team's, per minute and per day: the one with
/// the least left); null where no such limit is set.
/// </summary>
public sealed record QuotaHeadroom(QuotaAllowance? Requests, QuotaAllowance? Tokens);

/// <summary>Per-user and per-team quotas: requests and tokens per minute, tokens per day, concurrent requests.</summary>
public interface IQuotaGate
{
    /// <summary>What the caller has left of its request and token limits (for the rate-limit headers of each answer).</summary>
    QuotaHeadroom Headroom(ClaimsPrincipal user);

    /// <summary>Every user and team this node has counted, with their limits (for the usage page).</summary>
    IReadOnlyList<QuotaStanding> Standings();

    /// <summary>A lease when every quota of the caller still has room; otherwise null and the first quota that is used up.</summary>
    IQuotaLease? TryEnter(ClaimsPrincipal user, out QuotaRefusal? refusal);
}
