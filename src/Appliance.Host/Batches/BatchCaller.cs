using System.Security.Claims;
using System.Text.Encodings.Web;
using Appliance.Host.Identity;
using Appliance.Identity;
using Appliance.Identity.ApiKeys;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Batches;

/// <summary>
/// Who a batch's request runs as: its creator, with the claims the creator was authenticated with when creating it.
/// Set only on in-process requests (<see cref="InProcessServer"/>); a request from the network never carries it.
/// </summary>
internal sealed record BatchCaller(ClaimsPrincipal Principal, string BatchId, int Line, string CustomId)
{
    public const string AuthenticationType = "batch";

    public static BatchCaller For(Api.Batches.BatchJob job, int line, string customId) => new(
        new ClaimsPrincipal(new ClaimsIdentity(job.Claims.Select(c => new Claim(c.Key, c.Value)), AuthenticationType, ApplianceClaims.Username, ApplianceClaims.Role)),
        job.Id, line, customId);
}

/// <summary>
/// Authenticates a batch's in-process request as its creator. A batch created with an API key stops working with the
/// key: revoked, expired or its owner suspended, the rest of its requests are refused (401) as the key's would be.
/// </summary>
internal sealed class BatchCallerAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory loggerFactory, UrlEncoder encoder,
    TimeProvider time)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, loggerFactory, encoder)
{
    public const string SchemeName = "BatchCaller";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (Context.Features.Get<BatchCaller>() is not { } caller)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        if (caller.Principal.FindFirst(ApiKeyAuthenticationHandler.KeyIdClaim)?.Value is { } keyId)
        {
            // Resolved only here: a node without API keys never opens their table for a batch.
            var (key, unreadable) = Context.RequestServices.GetRequiredService<ApiKeyStore>().Known(keyId);
            if (unreadable)
            {
                // Not known to be revoked either: the batch waits (503) rather than failing for good.
                Context.Items[UnverifiableItem] = true;
                Api.Audit.RequestAudit.Of(Context).Reason = $"the API key table cannot be read: the key {keyId} of batch {caller.BatchId} cannot be checked";
                return Task.FromResult(AuthenticateResult.Fail("API key table unreadable"));
            }

            var owners = Context.RequestServices.GetRequiredService<ApiKeyOwnerWatch>();
            var refusal = key is null ? $"the API key {keyId} that created batch {caller.BatchId} is gone"
                : key.RevokedAt is not null ? $"the API key {keyId} that created batch {caller.BatchId} was revoked"
                : !key.IsActive(time.GetUtcNow()) ? $"the API key {keyId} that created batch {caller.BatchId} expired"
                : owners.Suspension(key) is { } why ? $"the owner {key.Owner} of the API key {keyId} that created batch {caller.BatchId} {why}"
                : null;
            if (refusal is not null)
            {
                Api.Audit.RequestAudit.Of(Context).Reason = refusal;
                return Task.FromResult(AuthenticateResult.Fail(refusal));
            }
        }

        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(caller.Principal, SchemeName)));
    }

    // Answered here, not by DenialResponses: a batch's refusal is no failed sign-in from its creator's address.
    protected override Task HandleChallengeAsync(AuthenticationProperties properties) =>
        Context.Items.ContainsKey(UnverifiableItem)
            ? Api.OpenAi.OpenAiError.Unavailable("The API key table cannot be read now, so the batch's key cannot be checked.", "credentials_unverifiable").WriteAsync(Context, 5)
            : Api.OpenAi.OpenAiError.Unauthenticated().WriteAsync(Context);

    private const string UnverifiableItem = "appliance.batch.unverifiable";

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties)
    {
        Api.Audit.RequestAudit.Of(Context).Reason = "missing the role this endpoint requires";
        return DenialResponses.Forbidden(Context);
    }
}
