using System.Security.Claims;
using Appliance.Identity;
using Appliance.Host.Options;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Identity;

/// <summary>
/// What happens around token validation: Keycloak roles become role claims, refusals are logged with their reason,
/// and 401 / 403 are answered in the API's own error format (OpenAI's on /v1, RFC 7807 elsewhere) with no detail.
/// </summary>
internal sealed class BearerEvents(IOptions<IdentityOptions> options, RealmMetadataWatch realm, ILogger<BearerEvents> logger) : JwtBearerEvents
{
    /// <summary>Marks a request whose token could not be checked because the realm cannot be read.</summary>
    public const string RealmUnreadableItem = "appliance.realm-unreadable";

    public override Task TokenValidated(TokenValidatedContext context)
    {
        realm.Confirmed(); // its signature was checked with the realm's keys, whatever is decided next
        var client = context.Principal?.FindFirst(ApplianceClaims.Client)?.Value;
        if (!options.Value.Accepts(client))
        {
            // A genuine token, but issued to an application not allowed to call the appliance: refused like a bad one
            // (401, no detail for the caller); the log and the audit record name the client for the administrator.
            var reason = $"issued to client '{client ?? "(none)"}', which is not in Identity:AllowedClients";
            Refuse(context.HttpContext, reason);
            context.Fail(reason);
            return Task.CompletedTask;
        }

        if (context.Principal?.Identity is ClaimsIdentity identity)
        {
            KeycloakRoles.AddTo(identity, options.Value.RoleClientId);
        }

        return Task.CompletedTask;
    }

    public override async Task AuthenticationFailed(AuthenticationFailedContext context)
    {
        var http = context.HttpContext;
        // Something that is no token at all is refused without the realm's keys: a 401, whatever the realm's state.
        if (context.Exception is not Microsoft.IdentityModel.Tokens.SecurityTokenMalformedException
            && await realm.UnreadableAsync(http.RequestAborted) is { } unreadable)
        {
            // Not the caller's fault, and logged once by the watch rather than once a request.
            http.Items[RealmUnreadableItem] = true;
            Appliance.Api.Audit.RequestAudit.Of(http).Reason = $"identity provider unavailable: {unreadable}";
            context.Fail("identity provider unavailable");
            return;
        }

        Refuse(http, Describe(context.Exception));
    }

    private void Refuse(HttpContext http, string reason)
    {
        Appliance.Api.Audit.RequestAudit.Of(http).Reason = $"token refused: {reason}";
        IdentityLog.TokenRefused(logger, http.Connection.RemoteIpAddress?.ToString(), http.Request.Method, http.Request.Path, reason);
    }

    public override async Task Challenge(JwtBearerChallengeContext context)
    {
        context.HandleResponse();
        var http = context.HttpContext;
        if (http.Items.ContainsKey(RealmUnreadableItem))
        {
            await DenialResponses.IdentityProviderUnavailable(http);
            return;
        }

        if (context.AuthenticateFailure is null)
        {
            Appliance.Api.Audit.RequestAudit.Of(http).Reason = "no credential";
            IdentityLog.TokenMissing(logger, http.Connection.RemoteIpAddress?.ToString(), http.Request.Method, http.Request.Path);
        }

        await DenialResponses.Unauthenticated(http, credentialSent: context.AuthenticateFailure is not null);
    }

    public override async Task Forbidden(ForbiddenContext context)
    {
        var http = context.HttpContext;
        var user = http.User;
        Appliance.Api.Audit.RequestAudit.Of(http).Reason = "missing the role this endpoint requires";
        IdentityLog.Forbidden(logger, http);
        await DenialResponses.Forbidden(http);
    }

    /// <summary>The kind of refusal for the log (expired, bad signature, wrong audience...), without the token itself.</summary>
    private static string Describe(Exception exception) => exception.GetType().Name switch
    {
        "SecurityTokenExpiredException" => "expired",
        "SecurityTokenNotYetValidException" => "not yet valid",
        "SecurityTokenInvalidLifetimeException" => "invalid lifetime",
        "SecurityTokenNoExpirationException" => "no expiry",
        "SecurityTokenInvalidIssuerException" => "issuer not trusted",
        "SecurityTokenInvalidAudienceException" => "wrong audience",
        "SecurityTokenSignatureKeyNotFoundException" => "signed with an unknown key",
        "SecurityTokenInvalidSignatureException" => "invalid signature",
        "SecurityTokenInvalidAlgorithmException" => "algorithm not allowed",
        "SecurityTokenMalformedException" => "malformed token",
        var name => name,
    };
}
