using System.Collections.Concurrent;
using System.Security.Claims;
using System.Text.Json;
using Appliance.Host.Options;
using Appliance.WebConsole;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.Extensions.Options;

namespace Appliance.Host.WebConsole;

/// <summary>
/// Keeps a console session's API token fresh with the realm's refresh token (Keycloak's access tokens last minutes, a
/// console session hours). Page requests renew the cookie; an open interactive page (whose principal is fixed when it
/// connects) asks here before each call, and the newest tokens are kept per session.
/// </summary>
internal sealed partial class ConsoleTokenRefresher(
    IOptionsMonitor<OpenIdConnectOptions> openId,
    IOptions<IdentityOptions> identity,
    IHttpClientFactory clients,
    TimeProvider time,
    ILogger<ConsoleTokenRefresher> logger)
{
    /// <summary>Refresh this long before the token expires, so that a call never leaves with a token about to die.</summary>
    private static readonly TimeSpan Margin = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<string, (string Access, string Refresh, DateTimeOffset UsedAt)> _latest = new(StringComparer.Ordinal);
    private long _prunedAtTicks;

    /// <summary>Sessions whose newest tokens are kept (for tests: recent sessions, not every session ever).</summary>
    public int TrackedSessions => _latest.Count;

    /// <summary>A valid access token for the session, refreshed when needed; the session's own token when it cannot be refreshed.</summary>
    public async Task<string?> AccessTokenAsync(ClaimsPrincipal user, CancellationToken cancellationToken)
    {
        var access = ConsoleClaims.ApiTokenOf(user);
        if (access is null || user.FindFirst(ConsoleSession.RefreshTokenClaim)?.Value is not { } sessionRefresh)
        {
            return access;
        }

        PruneIdle();
        var now = time.GetUtcNow();
        var (current, refresh, _) = _latest.GetValueOrDefault(sessionRefresh, (access, sessionRefresh, now));
        if (_latest.ContainsKey(sessionRefresh))
        {
            _latest[sessionRefresh] = (current, refresh, now);
        }

        if (!Expiring(current))
        {
            return current;
        }

        if (await RefreshAsync(refresh, cancellationToken) is not { } fresh)
        {
            return current;
        }

        _latest[sessionRefresh] = (fresh.Access, fresh.Refresh, now);
        return fresh.Access;
    }

    /// <summary>
    /// For the cookie: the principal unchanged while its token is fresh, a new one with refreshed tokens, or null when the
    /// token has expired and cannot be refreshed (the person signs in again).
    /// </summary>
    public async Task<(ClaimsPrincipal? Principal, bool Changed)> RenewAsync(ClaimsPrincipal user, CancellationToken cancellationToken)
    {
        var access = ConsoleClaims.ApiTokenOf(user);
        if (access is null || !Expiring(access))
        {
            return (user, false);
        }

        if (user.FindFirst(ConsoleSession.RefreshTokenClaim)?.Value is { } refresh && await RefreshAsync(refresh, cancellationToken) is { } fresh)
        {
            // The realm's newest ID token, when it sent one: sign-out hands it back, and a realm may refuse an expired one.
            var idToken = fresh.IdToken ?? user.FindFirst(ConsoleSession.IdTokenClaim)?.Value;
            return (ConsoleSession.FromAccessToken(fresh.Access, identity.Value.RoleClientId, fresh.Refresh, idToken), true);
        }

        return ConsoleSession.ExpiresAt(access) > time.GetUtcNow() ? (user, false) : (null, false);
    }

    /// <summary>
    /// Once a minute, forgets sessions not used for a whole session lifetime: their cookie has expired, so nothing
    /// will ask for them again.
    /// </summary>
    private void PruneIdle()
    {
        var now = time.GetUtcNow();
        var last = Interlocked.Read(ref _prunedAtTicks);
        if (now.UtcTicks - last < TimeSpan.TicksPerMinute || Interlocked.CompareExchange(ref _prunedAtTicks, now.UtcTicks, last) != last)
        {
            return;
        }

        var cutoff = now - identity.Value.ConsoleSessionLifetime;
        foreach (var stale in _latest.Where(entry => entry.Value.UsedAt < cutoff).Select(entry => entry.Key).ToList())
        {
            _latest.TryRemove(stale, out _);
        }
    }

    private bool Expiring(string accessToken) => ConsoleSession.ExpiresAt(accessToken) - time.GetUtcNow() < Margin;

    private async Task<(string Access, string Refresh, string? IdToken)?> RefreshAsync(string refreshToken, CancellationToken cancellationToken)
    {
        var options = openId.Get(ConsoleSession.OpenIdScheme);
        if (options.ConfigurationManager is null)
        {
            return null; // development sign-in: no realm, no refresh
        }

        try
        {
            var configuration = await options.ConfigurationManager.GetConfigurationAsync(cancellationToken);
            using var client = clients.CreateClient(nameof(ConsoleTokenRefresher));
            using var response = await client.PostAsync(configuration.TokenEndpoint, new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "refresh_token",
                ["refresh_token"] = refreshToken,
                ["client_id"] = options.ClientId!,
            }), cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                LogRefreshRefused(logger, (int)response.StatusCode);
                return null;
            }

            using var json = JsonDocument.Parse(body);
            var access = json.RootElement.GetProperty("access_token").GetString()!;
            // Keycloak may rotate the refresh token; keep the old one when it does not.
            var refresh = json.RootElement.TryGetProperty("refresh_token", out var rotated) ? rotated.GetString() ?? refreshToken : refreshToken;
            var idToken = json.RootElement.TryGetProperty("id_token", out var id) ? id.GetString() : null;
            return (access, refresh, idToken);
        }
        catch (Exception exception) when (exception is HttpRequestException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            LogRefreshFailed(logger, exception.Message);
            return null;
        }
    }

    [LoggerMessage(EventId = 6000, Level = LogLevel.Information, Message = "The realm refused to refresh a console session's token ({Status}); the person signs in again")]
    private static partial void LogRefreshRefused(ILogger logger, int status);

    [LoggerMessage(EventId = 6001, Level = LogLevel.Warning, Message = "A console session's token could not be refreshed: {Reason}")]
    private static partial void LogRefreshFailed(ILogger logger, string reason);
}
