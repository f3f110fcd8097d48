using Appliance.Api.Audit;
using Appliance.WebConsole;
using Appliance.Host.WebConsole;
using Appliance.Host.Options;
using Microsoft.AspNetCore.Authentication.Cookies;
using Radzen;

namespace Appliance.Host.Extensions;

/// <summary>
/// The web console under /console: Blazor (static rendering, interactive where it streams), a cookie session signed in
/// through the realm's console client (authorization code + PKCE) or, in Development, the development identity.
/// </summary>
public static class ConsoleExtensions
{
    public static WebApplicationBuilder AddApplianceConsole(this WebApplicationBuilder builder)
    {
        var identity = builder.Configuration.GetSection(IdentityOptions.Section).Get<IdentityOptions>() ?? new IdentityOptions();
        builder.Services.AddRazorComponents().AddInteractiveServerComponents();
        builder.Services.AddCascadingAuthenticationState();
        builder.Services.AddRadzenComponents();
        builder.Services.AddHttpClient();
        builder.Services.AddSingleton<IConsoleApi, LoopbackConsoleApi>();
        builder.Services.AddSingleton<IUsageScope, TeamUsageScope>();
        builder.Services.AddSingleton<ConsoleTokenRefresher>();
        builder.Services.AddSingleton(new ConsoleNavigation(
        [
            new ConsolePage("console", "Home"),
            new ConsolePage("console/playground", "Playground", identity.Roles.User),
            new ConsolePage("console/usage", "Usage", [identity.Roles.Admin, .. identity.Roles.TeamLead.Length > 0 ? [identity.Roles.TeamLead] : Array.Empty<string>()]),
            new ConsolePage("console/pool", "Pool", identity.Roles.Admin),
            new ConsolePage("console/audit", "Audit", identity.Roles.Auditor),
        ]));

        var authentication = builder.Services.AddAuthentication();
        authentication.AddCookie(ConsoleSession.Scheme, cookie =>
        {
            cookie.Cookie.Name = "appliance-console";
            cookie.Cookie.HttpOnly = true;
            cookie.Cookie.SameSite = SameSiteMode.Lax;
            cookie.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest; // TLS ends at HAProxy in a cluster
            cookie.LoginPath = "/console/login";
            cookie.ExpireTimeSpan = identity.ConsoleSessionLifetime;
            cookie.SlidingExpiration = false;
            cookie.Events.OnRedirectToAccessDenied = ConsoleDenial.NotAllowedAsync;
            cookie.Events.OnValidatePrincipal = async context =>
            {
                // Each page request: a token about to expire is refreshed and the cookie renewed; a dead one ends the session.
                var refresher = context.HttpContext.RequestServices.GetRequiredService<ConsoleTokenRefresher>();
                var (principal, changed) = await refresher.RenewAsync(context.Principal!, context.HttpContext.RequestAborted);
                if (principal is null)
                {
                    context.RejectPrincipal();
                }
                else if (changed)
                {
                    context.ReplacePrincipal(principal);
                    context.ShouldRenew = true;
                }
            };
        });
        if (!string.IsNullOrWhiteSpace(identity.Authority))
        {
            authentication.AddOpenIdConnect(ConsoleSession.OpenIdScheme, oidc =>
            {
                oidc.Authority = identity.Authority;
                oidc.RequireHttpsMetadata = identity.RequireHttpsMetadata;
                oidc.ClientId = identity.ConsoleClientId;
                oidc.ResponseType = "code";
                oidc.UsePkce = true;
                oidc.SignInScheme = ConsoleSession.Scheme;
                oidc.CallbackPath = "/console/signin-oidc";
                oidc.SignedOutCallbackPath = "/console/signout-oidc";
                oidc.MapInboundClaims = false;
                oidc.GetClaimsFromUserInfoEndpoint = false;
                oidc.Scope.Clear();
                oidc.Scope.Add("openid");
                oidc.Scope.Add("profile");
                oidc.Events.OnTokenValidated = context =>
                {
                    // The session is the API token's identity: the console shows what the API will allow.
                    var accessToken = context.TokenEndpointResponse?.AccessToken
                        ?? throw new InvalidOperationException("the realm returned no access token for the console client");
                    var refreshToken = context.TokenEndpointResponse?.RefreshToken;
                    context.Principal = ConsoleSession.FromAccessToken(accessToken, identity.RoleClientId, refreshToken, context.TokenEndpointResponse?.IdToken);
                    // With a refresh token the session lasts its configured lifetime; without, as long as the access token.
                    var expires = ConsoleSession.ExpiresAt(accessToken);
                    var limit = DateTimeOffset.UtcNow + identity.ConsoleSessionLifetime;
                    context.Properties!.ExpiresUtc = refreshToken is not null || expires > limit ? limit : expires;
                    return Task.CompletedTask;
                };
                oidc.Events.OnRedirectToIdentityProviderForSignOut = context =>
                {
                    // Keycloak (18 and later) accepts a post_logout_redirect_uri only with an ID token hint or the
                    // client id: without either, the realm's session (and the refresh token the cookie held) would live on.
                    context.ProtocolMessage.ClientId = identity.ConsoleClientId;
                    context.ProtocolMessage.IdTokenHint ??= context.HttpContext.User.FindFirst(ConsoleSession.IdTokenClaim)?.Value;
                    return Task.CompletedTask;
                };
            });
        }

        return builder;
    }

    public static WebApplication MapApplianceConsole(this WebApplication app, string auditPolicy, string usagePolicy)
    {
        app.UseAntiforgery();
        var manifest = Path.Combine(AppContext.BaseDirectory, $"{app.Environment.ApplicationName}.staticwebassets.endpoints.json");
        if (File.Exists(manifest))
        {
            app.MapStaticAssets(manifest).AllowAnonymous();
        }

        app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
        app.MapConsoleLogin();
        app.MapAuditExport("/console/audit/export").RequireAuthorization(auditPolicy);
        app.MapUsageCsv(usagePolicy);
        return app;
    }
}
