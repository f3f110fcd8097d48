using System.Net;
using System.Security.Claims;
using Appliance.Host.Options;
using Appliance.Identity;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace Appliance.Host.WebConsole;

/// <summary>
/// /console/login and /console/logout. With a Keycloak realm configured, login is OpenID Connect authorization code +
/// PKCE; in Development without one, a form signs in as any user with chosen roles through the development identity
/// (loopback only, like the development identity itself).
/// </summary>
internal static class ConsoleLoginEndpoints
{
    public static void MapConsoleLogin(this WebApplication app)
    {
        app.MapGet("/console/login", (HttpContext http, [FromQuery(Name = "ReturnUrl")] string? returnUrl, IAntiforgery antiforgery) =>
        {
            var target = SafeReturn(returnUrl);
            if (http.RequestServices.GetService<DevelopmentIdentity>() is null)
            {
                return Results.Challenge(new AuthenticationProperties { RedirectUri = target }, [ConsoleSession.OpenIdScheme]);
            }

            var tokens = antiforgery.GetAndStoreTokens(http);
            return Results.Content(DevelopmentForm(target, tokens.FormFieldName, tokens.RequestToken!), "text/html; charset=utf-8");
        }).AllowAnonymous();

        app.MapPost("/console/login", async (HttpContext http, [FromForm] DevelopmentLogin form, IOptions<IdentityOptions> identity, TimeProvider time) =>
        {
            if (http.RequestServices.GetService<DevelopmentIdentity>() is not { } local || !IPAddress.IsLoopback(http.Connection.RemoteIpAddress ?? IPAddress.None))
            {
                return Results.NotFound();
            }

            var user = string.IsNullOrWhiteSpace(form.User) ? "developer" : form.User.Trim();
            var roles = (form.Roles ?? []).Where(r => r is { Length: > 0 }).ToList();
            var token = local.Mint(new DevelopmentTokenRequest(user, roles, identity.Value.Audience, identity.Value.ConsoleSessionLifetime, ClientId: identity.Value.ConsoleClientId), time.GetUtcNow());
            await http.SignInAsync(ConsoleSession.Scheme, ConsoleSession.FromAccessToken(token, identity.Value.RoleClientId),
                new AuthenticationProperties { ExpiresUtc = ConsoleSession.ExpiresAt(token) });
            return Results.LocalRedirect(SafeReturn(form.ReturnUrl));
        }).AllowAnonymous().DisableAntiforgery().AddEndpointFilter(async (context, next) =>
        {
            // Validated here rather than by the middleware so that a bad token gets a plain 400, not an exception page.
            var antiforgery = context.HttpContext.RequestServices.GetRequiredService<IAntiforgery>();
            return await antiforgery.IsRequestValidAsync(context.HttpContext) ? await next(context) : Results.BadRequest("The form expired; reload the sign-in page.");
        });

        app.MapPost("/console/logout", async (HttpContext http) =>
        {
            await http.SignOutAsync(ConsoleSession.Scheme);
            if (http.RequestServices.GetService<DevelopmentIdentity>() is null)
            {
                // Ends the Keycloak session too, then comes back to the console's front page.
                return Results.SignOut(new AuthenticationProperties { RedirectUri = "/console" }, [ConsoleSession.OpenIdScheme]);
            }

            return Results.LocalRedirect("/console");
        }).RequireAuthorization();
    }

    private static string SafeReturn(string? returnUrl) =>
        returnUrl is { Length: > 0 } url && url.StartsWith("/console", StringComparison.Ordinal) && !url.StartsWith("//", StringComparison.Ordinal) ? url : "/console";

    private static string DevelopmentForm(string returnUrl, string fieldName, string requestToken)
    {
        var roles = new[] { "appliance-user", "appliance-admin", "appliance-auditor" };
        var boxes = string.Join("\n", roles.Select(r => $"""<label><input type="checkbox" name="Roles" value="{r}" checked> {r}</label><br>"""));
        return ConsoleHtml.Page("Sign in (development)", $"""
            <h1>Sign in (development identity)</h1>
            <p>No Keycloak realm is configured: sign in as any user with the roles you pick. This form exists only in the
            Development environment and only on loopback.</p>
            <form method="post" action="/console/login">
            <input type="hidden" name="{WebUtility.HtmlEncode(fieldName)}" value="{WebUtility.HtmlEncode(requestToken)}">
            <input type="hidden" name="ReturnUrl" value="{WebUtility.HtmlEncode(returnUrl)}">
            <label for="user">User name</label> <input id="user" name="User" value="developer" autocomplete="username"><br>
            <fieldset><legend>Roles</legend>{boxes}</fieldset>
            <button type="submit">Sign in</button></form>
            """);
    }

    /// <summary>The development sign-in form's fields.</summary>
    internal sealed record DevelopmentLogin(string? User, string[]? Roles, string? ReturnUrl);
}
