using Appliance.Api.OpenAi;

namespace Appliance.Host.Identity;

/// <summary>
/// The 401 and 403 answers, the same whichever credential was refused: OpenAI's error format on /v1, RFC 7807
/// elsewhere, and nothing about why (the reason goes to the log).
/// </summary>
internal static class DenialResponses
{
    public static Task Unauthenticated(HttpContext http, bool credentialSent)
    {
        if (http.RequestServices.GetService<UnauthenticatedFloodGuard>() is { } flood && flood.IsThrottled(UnauthenticatedFloodGuard.AddressOf(http)))
        {
            // One more failure from an address over its limit: refused as part of the flood.
            http.Items[UnauthenticatedFloodGuard.RefusedItem] = true;
            return TooManyUnauthenticated(http);
        }

        // RFC 6750: say that a bearer token is expected, and that the one sent was refused, but not why.
        http.Response.Headers.WWWAuthenticate = credentialSent ? "Bearer realm=\"appliance\", error=\"invalid_token\"" : "Bearer realm=\"appliance\"";
        return Answer(http, StatusCodes.Status401Unauthorized, OpenAiError.Unauthenticated(), "Authentication required", "Send a valid bearer token.");
    }

    /// <summary>An address over its limit of failed authentications (see <see cref="UnauthenticatedFloodGuard"/>).</summary>
    public static Task TooManyUnauthenticated(HttpContext http)
    {
        http.Response.Headers.RetryAfter = "60";
        return Answer(http, StatusCodes.Status429TooManyRequests,
            new OpenAiError(StatusCodes.Status429TooManyRequests, "Too many requests without valid credentials from this address; try again later with a valid bearer token.", "rate_limit_exceeded", null, "unauthenticated_rate_limit"),
            "Too many requests", "Too many requests without valid credentials from this address.");
    }

    /// <summary>A token that could not be checked because the realm's metadata cannot be read: try again shortly.</summary>
    public static Task IdentityProviderUnavailable(HttpContext http)
    {
        http.Response.Headers.RetryAfter = "30";
        return Answer(http, StatusCodes.Status503ServiceUnavailable,
            OpenAiError.Unavailable("The identity provider cannot be reached to check the token; try again later.", "identity_provider_unavailable"),
            "Identity provider unavailable", "The identity provider cannot be reached to check the token; try again later.");
    }

    public static Task Forbidden(HttpContext http) =>
        Answer(http, StatusCodes.Status403Forbidden, OpenAiError.Forbidden(), "Forbidden", "You are not allowed to use this endpoint.");

    private static Task Answer(HttpContext http, int status, OpenAiError openAiError, string title, string detail) =>
        OpenAiApi.AnswersAsOpenAi(http.Request.Path)
            ? openAiError.ToResult().ExecuteAsync(http)
            : Results.Problem(statusCode: status, title: title, detail: detail).ExecuteAsync(http);
}
