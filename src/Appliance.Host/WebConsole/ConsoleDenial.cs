using System.Net;
using Appliance.Api.Audit;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;

namespace Appliance.Host.WebConsole;

/// <summary>A console page the person's roles do not open: a clear 403 page (no redirect), recorded in the audit log as refused.</summary>
internal static class ConsoleDenial
{
    public static async Task NotAllowedAsync(RedirectContext<CookieAuthenticationOptions> context)
    {
        var http = context.HttpContext;
        var path = http.Request.Path.Value ?? "/console";
        RequestAudit.Of(http).Reason = $"console page not allowed for the person's roles: {path}";
        http.Response.StatusCode = StatusCodes.Status403Forbidden;
        http.Response.ContentType = "text/html; charset=utf-8";
        var page = WebUtility.HtmlEncode(path);
        var name = WebUtility.HtmlEncode(http.User.Identity?.Name ?? "you");
        await http.Response.WriteAsync(ConsoleHtml.Page("Not allowed", $"""
            <h1>Not allowed</h1>
            <p>The roles of {name} do not open <code>{page}</code>. If your work needs it, ask an administrator for the role; this attempt was recorded.</p>
            <p><a href="/console">Back to the console</a></p>
            """));
    }
}
