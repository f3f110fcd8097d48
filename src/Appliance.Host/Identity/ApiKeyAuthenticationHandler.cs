using System.Security.Claims;
using System.Text.Encodings.Web;
using Appliance.Identity;
using Appliance.Identity.ApiKeys;
using Appliance.Host.Options;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Identity;

/// <summary>
/// Authenticates "Authorization: Bearer apk_..." with a stored API key: the caller becomes the key's owner with the
/// key's roles, groups and clearance, so per-model access applies to keys exactly as to tokens.
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory loggerFactory,
    UrlEncoder encoder,
    ApiKeyStore store,
    ApiKeyOwnerWatch owners,
    IOptions<IdentityOptions> identity,
    TimeProvider time)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, loggerFactory, encoder)
{
    public const string SchemeName = "ApiKey";

    /// <summary>The claim naming the key a request used (the audit log records it).</summary>
    public const string KeyIdClaim = "api_key_id";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var (record, refusal) = store.Authenticate(header["Bearer ".Length..].Trim(), time.GetUtcNow());
        if (record is not null && owners.Suspension(record) is { } why)
        {
            refusal = $"API key {record.Id}: its owner {record.Owner} {why}";
            record = null;
        }

        if (record is null)
        {
            Appliance.Api.Audit.RequestAudit.Of(Context).Reason = refusal;
            IdentityLog.ApiKeyRefused(Logger, refusal!, Context.Connection.RemoteIpAddress?.ToString(), Request.Method, Request.Path);
            return Task.FromResult(AuthenticateResult.Fail("API key refused"));
        }

        var settings = identity.Value;
        List<Claim> claims =
        [
            new(ApplianceClaims.Username, record.Owner),
            new(ApplianceClaims.Subject, $"api-key:{record.Id}"),
            new(ApplianceClaims.Client, $"api-key:{record.Id}"),
            new(KeyIdClaim, record.Id),
            .. record.Roles.Select(role => new Claim(ApplianceClaims.Role, role)),
            .. record.Groups.Select(group => new Claim(settings.GroupsClaim, group)),
        ];
        if (record.Clearance is { } clearance)
        {
            claims.Add(new Claim(settings.ClearanceClaim, clearance));
        }

        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName, ApplianceClaims.Username, ApplianceClaims.Role));
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties) => DenialResponses.Unauthenticated(Context, credentialSent: true);

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Appliance.Api.Audit.RequestAudit.Of(Context).Reason = "missing the role this endpoint requires";
        IdentityLog.Forbidden(Logger, Context);
        return DenialResponses.Forbidden(Context);
    }
}
