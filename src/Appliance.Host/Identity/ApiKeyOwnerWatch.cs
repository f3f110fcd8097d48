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
/// realm: one that is not found is not checked (one that is found disabled is suspended). The first check that finds an
/// owner pins the account's Keycloak id on the owner's keys; a key whose owner name later belongs to another account
/// (the owner's was deleted and the name given again) stays suspended.
/// </summary>
internal sealed partial class ApiKeyOwnerWatch(IOptions<IdentityOptions> options, ApiKeyStore store, TimeProvider time, ILogger<ApiKeyOwnerWatch> logger)
    : BackgroundService
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private volatile Verdicts _verdicts = new(new Dictionary<string, string>(StringComparer.Ordinal), new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase));
    private readonly long _startedAt = time.GetTimestamp();
    private long _lastSuccess; // timestamp of the last round that answered for every owner; 0: none yet
    private bool _failing;
    private readonly HashSet<string> _reportedUnchecked = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Whether owner checks are configured (Identity:ApiKeys:OwnerCheck:ClientId).</summary>
    public bool Enabled => options.Value.ApiKeys.Enabled && options.Value.ApiKeys.OwnerCheck.ClientId.Length > 0;

    /// <summary>Why the key is suspended (its owner disabled or deleted in Keycloak, or unchecked too long), or null.</summary>
    public string? Suspension(ApiKeyRecord key)
    {
        if (!Enabled)
        {
            return null;
        }

        var since = Interlocked.Read(ref _lastSuccess) is var last and not 0 ? last : _startedAt;
        var stale = time.GetElapsedTime(since);
        return stale > options.Value.ApiKeys.OwnerCheck.MaxStaleness
            ? $"could not be checked in Keycloak for {stale.TotalMinutes:F0} minutes (Identity:ApiKeys:OwnerCheck:MaxStaleness); keys are refused until a check succeeds"
            : _verdicts.Suspension(key);
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
            var keys = store.All().Where(k => k.IsActive(now)).ToList();
            var suspended = new Dictionary<string, string>(StringComparer.Ordinal);
            var owners = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            if (keys.Count > 0)
            {
                var token = await ServiceAccountTokenAsync(cancellation);
                foreach (var owned in keys.GroupBy(k => k.Owner, StringComparer.OrdinalIgnoreCase))
                {
                    var account = await AccountOfAsync(owned.Key, token, cancellation);
                    if (account is { Id: { } id } && owned.Where(k => k.OwnerId is null).Select(k => k.Id).ToList() is { Count: > 0 } unpinned)
                    {
                        Pin(owned.Key, id, unpinned);
                    }

                    if (OwnerVerdict(owned.Key, account) is { } ownerWhy)
                    {
                        owners[owned.Key] = ownerWhy; // also refuses a key issued to this owner before the next round
                    }

                    foreach (var key in owned)
                    {
                        if (Verdict(owned.Key, key, account) is { } why)
                        {
                            suspended[key.Id] = why;
                        }
                    }
                }
            }

            var before = _verdicts.ByKey;
            foreach (var key in keys.Where(k => suspended.ContainsKey(k.Id) && !before.ContainsKey(k.Id)))
            {
                LogSuspended(logger, key.Id, key.Owner, suspended[key.Id]);
            }

            foreach (var key in keys.Where(k => before.ContainsKey(k.Id) && !suspended.ContainsKey(k.Id)))
            {
                LogResumed(logger, key.Id, key.Owner);
            }

            _verdicts = new Verdicts(suspended, owners);
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

    /// <summary>Records the account's id on the keys read this round that have none (a key issued since is pinned next round).</summary>
    private void Pin(string owner, string accountId, IReadOnlyList<string> keyIds)
    {
        try
        {
            store.PinOwner(owner, accountId, keyIds);
        }
        catch (System.Data.Common.DbException exception)
        {
            // The verdicts of this round stand without it; the next round pins again.
            LogPinFailed(logger, exception, owner, exception.Message);
        }
    }

    /// <summary>What refuses every key of the owner, including one issued since this round read the keys: a disabled or deleted account.</summary>
    private string? OwnerVerdict(string owner, KeycloakAccount? account) => account is null
        ? Verdict(owner, key: null, account)
        : account.Enabled ? null : "is disabled in Keycloak";

    /// <summary>Why the key must not work (what happened to its owner's account), or null.</summary>
    private string? Verdict(string owner, ApiKeyRecord? key, KeycloakAccount? account)
    {
        if (account is null)
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

        return key?.OwnerId is not null && account.Id is not null && !string.Equals(key.OwnerId, account.Id, StringComparison.Ordinal)
            ? $"is another Keycloak account now (id {account.Id}; the key was issued to {key!.OwnerId}, deleted since): revoke the key"
            : !account.Enabled ? "is disabled in Keycloak"
            : null;
    }

    /// <summary>The owner's account in the realm, or null when there is none.</summary>
    private async Task<KeycloakAccount?> AccountOfAsync(string owner, string token, CancellationToken cancellation)
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
        return match.ValueKind == JsonValueKind.Undefined
            ? null
            : new KeycloakAccount(
                match.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null,
                !(match.TryGetProperty("enabled", out var enabled) && enabled.ValueKind == JsonValueKind.False));
    }

    private sealed record KeycloakAccount(string? Id, bool Enabled);

    /// <summary>One round's verdicts: by key, and by owner for what refuses all of an owner's keys (a disabled or deleted account).</summary>
    private sealed record Verdicts(Dictionary<string, string> ByKey, Dictionary<string, string> ByOwner)
    {
        public string? Suspension(ApiKeyRecord key) => ByKey.GetValueOrDefault(key.Id) ?? ByOwner.GetValueOrDefault(key.Owner);
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

    [LoggerMessage(EventId = 3033, Level = LogLevel.Warning, Message = "API key {KeyId} of {Owner} is suspended: the owner {Reason}")]
    private static partial void LogSuspended(ILogger logger, string keyId, string owner, string reason);

    [LoggerMessage(EventId = 3034, Level = LogLevel.Information, Message = "API key {KeyId} of {Owner} works again: the owner is enabled in Keycloak")]
    private static partial void LogResumed(ILogger logger, string keyId, string owner);

    [LoggerMessage(EventId = 3037, Level = LogLevel.Warning, Message = "The Keycloak account id of API key owner {Owner} could not be recorded on its keys ({Reason}); the next round tries again")]
    private static partial void LogPinFailed(ILogger logger, Exception exception, string owner, string reason);

    [LoggerMessage(EventId = 3036, Level = LogLevel.Information, Message = "API key owner {Owner} is a service owner without a Keycloak account: its keys are not checked")]
    private static partial void LogServiceOwnerUnchecked(ILogger logger, string owner);

    [LoggerMessage(EventId = 3035, Level = LogLevel.Error, Message = "Checking API key owners in Keycloak failed ({Reason}); the last verdicts stand until a check succeeds")]
    private static partial void LogCheckFailed(ILogger logger, Exception exception, string reason);
}
