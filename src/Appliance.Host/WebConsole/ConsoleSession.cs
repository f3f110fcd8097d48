using System.Security.Claims;
using Appliance.WebConsole;
using Appliance.Identity;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Appliance.Host.WebConsole;

/// <summary>
/// The console session's principal, built from the person's API access token (so the console shows exactly what the
/// API will allow): Keycloak roles mapped as for bearer tokens, and the token itself kept for the playground's calls.
/// </summary>
internal static class ConsoleSession
{
    public const string Scheme = "Console";

    public const string OpenIdScheme = "ConsoleOpenId";

    /// <summary>Requests that belong to the console: its pages, its interactive connection, its login and logout.</summary>
    public static bool Owns(PathString path) =>
        path.StartsWithSegments("/console") || path.StartsWithSegments("/_blazor");

    /// <summary>Claim holding the realm's refresh token, with which the session gets fresh access tokens.</summary>
    public const string RefreshTokenClaim = "appliance/console_refresh_token";

    /// <summary>
    /// Claim holding the realm's ID token: sign-out sends it (id_token_hint), so that the realm ends the person's
    /// session without asking, and its refresh tokens with it.
    /// </summary>
    public const string IdTokenClaim = "appliance/console_id_token";

    public static ClaimsPrincipal FromAccessToken(string accessToken, string roleClientId, string? refreshToken = null, string? idToken = null)
    {
        var token = new JsonWebToken(accessToken);
        var identity = new ClaimsIdentity(token.Claims, Scheme, ApplianceClaims.Username, ApplianceClaims.Role);
        KeycloakRoles.AddTo(identity, roleClientId);
        identity.AddClaim(new Claim(ConsoleClaims.ApiToken, accessToken));
        if (refreshToken is not null)
        {
            identity.AddClaim(new Claim(RefreshTokenClaim, refreshToken));
        }

        if (idToken is not null)
        {
            identity.AddClaim(new Claim(IdTokenClaim, idToken));
        }

        return new ClaimsPrincipal(identity);
    }

    /// <summary>When the access token stops working.</summary>
    public static DateTimeOffset ExpiresAt(string accessToken) => new JsonWebToken(accessToken).ValidTo is var expiry && expiry > DateTime.MinValue
        ? new DateTimeOffset(DateTime.SpecifyKind(expiry, DateTimeKind.Utc))
        : DateTimeOffset.UtcNow.AddMinutes(5);
}
