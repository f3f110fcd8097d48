using Appliance.Host.Options;
using Microsoft.AspNetCore.Cors.Infrastructure;

namespace Appliance.Host.Extensions;

/// <summary>
/// Chat UIs that call the API from the browser (a web page on another origin) need CORS: Appliance:CorsOrigins lists
/// the origins allowed on /v1 (nothing by default, and only there: the console is served from the node's own origin,
/// and the admin and audit APIs are for tools, not pages). Tokens travel in the Authorization header, never cookies, so
/// credentials are not allowed; the preflight is answered before authentication and is not audited (it carries none).
/// </summary>
public static class BrowserOriginsExtensions
{
    private const string Policy = "browser-origins";

    public static WebApplicationBuilder AddBrowserOrigins(this WebApplicationBuilder builder)
    {
        var origins = (builder.Configuration.GetSection(ApplianceOptions.Section).Get<ApplianceOptions>()?.CorsOrigins ?? []).Select(Origin).ToArray();
        if (origins.Length > 0)
        {
            builder.Services.AddCors(cors => cors.AddPolicy(Policy, new CorsPolicyBuilder()
                .WithOrigins(origins)
                .AllowAnyHeader()
                .WithMethods("GET", "POST", "DELETE")
                // What SDKs read from an answer: the request id for support, when to retry, and what is left of the quotas.
                .WithExposedHeaders([Audit.AuditMiddleware.RequestIdHeader, "Retry-After", "x-should-retry", "X-Quota-Name", "X-Quota-Reset",
                    .. RateLimitNames("x-ratelimit-{0}-{1}", "limit", "remaining", "reset"),
                    .. RateLimitNames("anthropic-ratelimit-{1}-{0}", "limit", "remaining", "reset")])
                .SetPreflightMaxAge(TimeSpan.FromMinutes(10))
                .Build()));
        }

        return builder;
    }

    /// <summary>The rate-limit header names of one API (see Api.Quotas.RateLimitHeaders), for requests and tokens.</summary>
    private static IEnumerable<string> RateLimitNames(string format, params string[] parts) =>
        parts.SelectMany(part => new[] { "requests", "tokens" }.Select(kind => string.Format(System.Globalization.CultureInfo.InvariantCulture, format, part, kind)));

    public static WebApplication UseBrowserOrigins(this WebApplication app)
    {
        if (app.Configuration.GetSection(ApplianceOptions.Section).Get<ApplianceOptions>()?.CorsOrigins is { Count: > 0 })
        {
            app.UseWhen(http => http.Request.Path.StartsWithSegments("/v1"), api => api.UseCors(Policy));
        }

        return app;
    }

    /// <summary>An origin as browsers send it: scheme, host and port, no path; "*" is refused (list the UIs' origins).</summary>
    private static string Origin(string entry)
    {
        if (Uri.TryCreate(entry.TrimEnd('/'), UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.AbsolutePath == "/"
            && string.IsNullOrEmpty(uri.Query) && string.IsNullOrEmpty(uri.UserInfo))
        {
            return uri.GetLeftPart(UriPartial.Authority);
        }

        throw new SettingsException(entry == "*"
            ? "Appliance:CorsOrigins: '*' would let any web page call the API with a user's token: list the chat UIs' origins, e.g. https://chat.example.org"
            : $"Appliance:CorsOrigins: '{entry}' is not an origin: write the scheme, host and port only, e.g. https://chat.example.org or http://10.0.0.5:3000");
    }
}
