using System.Net.Http.Headers;
using System.Text.Json;
using Appliance.Host.Options;
using Appliance.Identity.ApiKeys;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Identity;

/// <summary>
/// Keeps API keys from outliving their owner's Keycloak account: every <see cref="ApiKeyOwnerCheckOptions.Interval"/> it
/// looks up each active key's owner in the realm (Keycloak's admin API, with a service account allowed to view users)
/// and suspends the keys of an owner who was disabled or deleted, until the owner is enabled again. A failed round
/// (Keycloak down, a missing role) keeps the last verdicts and is logged; once no round has succeeded for
/// <see cref="ApiKeyOwnerCheckOptions.MaxStaleness"/> (counted from start on a node that never had one, since the
/// verdicts live in memory), every key is refused until one does. Service owners
/// (Identity:ApiKeys:ServiceOwners) other than Keycloak's service-account-&lt;client&gt; users need not exist in the
/// realm: one that is not found is not checked (one that is found disabled is suspended).
/// </summary>
internal sealed partial class ApiKeyOwnerWatch(IOptions<IdentityOptions> options, ApiKeyStore store, TimeProvider time, ILogger<ApiKeyOwnerWatch> logger)
    : BackgroundService
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private volatile Dictionary<string, string> _suspended = new(StringComparer.OrdinalIgnoreCase);
    private readonly long _startedAt = time.GetTimestamp();
    private long _lastSuccess; // timestamp of the last round that answered for every owner; 0: none yet
    private bool _failing;
    private readonly HashSet<string> _reportedUnchecked = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Whether owner checks are configured (Identity:ApiKeys:OwnerCheck:ClientId).</summary>
    public bool Enabled => options.Value.ApiKeys.Enabled && options.Value.ApiKeys.OwnerCheck.ClientId.Length > 0;

    /// <summary>Why keys of <paramref name="owner"/> are suspended (disabled or deleted in Keycloak, or unchecked too long), or null.</summary>
    public string? Suspension(string owner)
    {
        if (!Enabled)
        {
            return null;
        }

        var since = Interlocked.Read(ref _lastSuccess) is var last and not 0 ? last : _startedAt;
        var stale = time.GetElapsedTime(since);
        return stale > options.Value.ApiKeys.OwnerCheck.MaxStaleness
            ? $"could not be checked in Keycloak for {stale.TotalMinutes:F0} minutes (Identity:ApiKeys:OwnerCheck:MaxStaleness); keys are refused until a check succeeds"
            : _suspended.GetValueOrDefault(owner);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!Enabled)
        {
            return;
        }

        using var timer = new PeriodicTimer(options.Value.ApiKeys.OwnerCheck.Interval, time);
        do
        {
            await CheckAsync(stoppingToken);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }

    /// <summary>One round: every active key's owner looked up; the suspensions replaced only when every lookup answered.</summary>
    internal async Task CheckAsync(CancellationToken cancellation)
    {
        try
        {
            var now = time.GetUtcNow();
            var owners = store.All().Where(k => k.IsActive(now)).Select(k => k.Owner).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            if (owners.Count == 0)
            {
                _suspended = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                Interlocked.Exchange(ref _lastSuccess, time.GetTimestamp());
                return;
            }

            var token = await ServiceAccountTokenAsync(cancellation);
            var suspended = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var owner in owners)
            {
                if (await StateOfAsync(owner, token, cancellation) is { } why)
                {
                    suspended[owner] = why;
                }
            }

            foreach (var (owner, why) in suspended.Where(s => !_suspended.ContainsKey(s.Key)))
            {
                LogSuspended(logger, owner, why);
            }

            foreach (var owner in _suspended.Keys.Where(o => !suspended.ContainsKey(o) && owners.Contains(o, StringComparer.OrdinalIgnoreCase)))
            {
                LogResumed(logger, owner);
            }

            _suspended = suspended;
            Interlocked.Exchange(ref _lastSuccess, time.GetTimestamp());
            _failing = false;
        }
        catch (Exception exception) when (!cancellation.IsCancellationRequested)
        {
            // Whatever failed (Keycloak down or refusing, an answer of another shape, the key table unreadable), the
            // host must not stop over it: a background service's exception would end the process.
            if (!_failing)
            {
                LogCheckFailed(logger, exception, exception.Message);
                _failing = true;
            }
        }
    }

    /// <summary>Null while the owner exists and is enabled; otherwise what happened to the account.</summary>
    private async Task<string?> StateOfAsync(string owner, string token, CancellationToken cancellation)
    {
        var (adminBase, _) = Realm();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{adminBase}/users?username={Uri.EscapeDataString(owner)}&exact=true&briefRepresentation=true");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await _http.SendAsync(request, cancellation);
        if (response.StatusCode is System.Net.HttpStatusCode.Unauthorized or System.Net.HttpStatusCode.Forbidden)
        {
            throw new InvalidOperationException(
                $"Keycloak refused to list users ({(int)response.StatusCode}): give the service account '{options.Value.ApiKeys.OwnerCheck.ClientId}' the realm-management role view-users");
        }

        response.EnsureSuccessStatusCode();
        using var users = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(cancellation));
        var match = users.RootElement.EnumerateArray()
            .FirstOrDefault(u => string.Equals(u.GetProperty("username").GetString(), owner, StringComparison.OrdinalIgnoreCase));
        if (match.ValueKind == JsonValueKind.Undefined)
        {
            // People and Keycloak service accounts (service-account-<client>) are realm users: missing means deleted.
            // Other service owners may be names of the administrators' own choosing.
            if (!options.Value.ApiKeys.ServiceOwners.Contains(owner, StringComparer.OrdinalIgnoreCase)
                || owner.StartsWith("service-account-", StringComparison.OrdinalIgnoreCase))
            {
                return "no longer exists in Keycloak";
            }

            if (_reportedUnchecked.Add(owner))
            {
                LogServiceOwnerUnchecked(logger, owner);
            }

            return null;
        }

        return match.TryGetProperty("enabled", out var enabled) && enabled.ValueKind == JsonValueKind.False ? "is disabled in Keycloak" : null;
    }

    private async Task<string> ServiceAccountTokenAsync(CancellationToken cancellation)
    {
        var check = options.Value.ApiKeys.OwnerCheck;
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{options.Value.Authority.TrimEnd('/')}/protocol/openid-connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials", ["client_id"] = check.ClientId, ["client_secret"] = check.ClientSecret,
            }),
        };
        using var response = await _http.SendAsync(request, cancellation);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"Keycloak refused the service account '{check.ClientId}' a token ({(int)response.StatusCode}): check its client secret");
        }

        using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync(cancellation));
        return body.RootElement.GetProperty("access_token").GetString() ?? throw new InvalidOperationException("Keycloak's token answer has no access_token");
    }

    /// <summary>
    /// The realm's admin API from its issuer URL: https://kc/realms/appliance becomes https://kc/admin/realms/appliance
    /// (and a Keycloak under /auth keeps its prefix).
    /// </summary>
    internal (string AdminBase, string Realm) Realm()
    {
        var authority = options.Value.Authority.TrimEnd('/');
        var at = authority.LastIndexOf("/realms/", StringComparison.Ordinal);
        return at < 0
            ? throw new InvalidOperationException($"Identity:Authority '{authority}' is not a Keycloak realm URL (…/realms/<realm>)")
            : ($"{authority[..at]}/admin/realms/{authority[(at + "/realms/".Length)..]}", authority[(at + "/realms/".Length)..]);
    }

    [LoggerMessage(EventId = 3033, Level = LogLevel.Warning, Message = "API keys of {Owner} are suspended: the owner {Reason}")]
    private static partial void LogSuspended(ILogger logger, string owner, string reason);

    [LoggerMessage(EventId = 3034, Level = LogLevel.Information, Message = "API keys of {Owner} work again: the owner is enabled in Keycloak")]
    private static partial void LogResumed(ILogger logger, string owner);

    [LoggerMessage(EventId = 3036, Level = LogLevel.Information, Message = "API key owner {Owner} is a service owner without a Keycloak account: its keys are not checked")]
    private static partial void LogServiceOwnerUnchecked(ILogger logger, string owner);

    [LoggerMessage(EventId = 3035, Level = LogLevel.Error, Message = "Checking API key owners in Keycloak failed ({Reason}); the last verdicts stand until a check succeeds")]
    private static partial void LogCheckFailed(ILogger logger, Exception exception, string reason);
}
