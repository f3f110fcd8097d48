using System.Net;
using System.Text.RegularExpressions;

namespace Appliance.IntegrationTests.Deployment;

/// <summary>
/// What a person's browser does to sign in to the console through the load balancer: /console/login redirects to the
/// realm, the realm's login form is posted, and the realm's answer (a form posted back to /console/signin-oidc) is
/// submitted; the node then exchanges the code with the realm itself.
/// </summary>
internal static partial class ConsoleSignIn
{
    /// <summary>Signs <paramref name="user"/> in; returns where the console sent the browser after the callback.</summary>
    public static async Task<string> SignInAsync(HttpClient browser, string user, string returnUrl)
    {
        var location = await RedirectAsync(browser, new Uri(browser.BaseAddress!, $"/console/login?ReturnUrl={Uri.EscapeDataString(returnUrl)}"));
        location = await RedirectAsync(browser, location); // the realm's authorization endpoint, to its login page
        using (var login = await browser.PostAsync(location, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["prompt"] = "login", ["login"] = user, ["password"] = "any",
        })))
        {
            location = new Uri(location, login.Headers.Location ?? throw new InvalidOperationException($"the realm refused the login ({login.StatusCode})"));
        }

        // The realm resumes the authorization and answers with a page that posts the code back to the console.
        string page;
        for (var hop = 0; ; hop++)
        {
            using var step = await browser.GetAsync(location);
            if (step.Headers.Location is { } next && hop < 5)
            {
                location = new Uri(location, next);
                continue;
            }

            page = await step.Content.ReadAsStringAsync();
            break;
        }

        var action = FormAction().Match(page);
        if (!action.Success)
        {
            throw new InvalidOperationException($"the realm did not answer with a form for the console: {page}");
        }

        var fields = HiddenField().Matches(page).ToDictionary(m => m.Groups[1].Value, m => WebUtility.HtmlDecode(m.Groups[2].Value));
        using var callback = await browser.PostAsync(WebUtility.HtmlDecode(action.Groups[1].Value), new FormUrlEncodedContent(fields));
        return callback.StatusCode == HttpStatusCode.Redirect && callback.Headers.Location is { } target
            ? target.ToString()
            : throw new InvalidOperationException($"the console did not accept the realm's answer ({callback.StatusCode}): {await callback.Content.ReadAsStringAsync()}");
    }

    private static async Task<Uri> RedirectAsync(HttpClient browser, Uri location)
    {
        using var response = await browser.GetAsync(location);
        return response.Headers.Location is { } next
            ? new Uri(location, next)
            : throw new InvalidOperationException($"{location} did not redirect ({response.StatusCode}): {await response.Content.ReadAsStringAsync()}");
    }

    [GeneratedRegex("<form method=\"post\" action=\"([^\"]+)\"")]
    private static partial Regex FormAction();

    [GeneratedRegex("<input type=\"hidden\" name=\"([^\"]+)\" value=\"([^\"]*)\"")]
    private static partial Regex HiddenField();
}
