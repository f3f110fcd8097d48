using System.Globalization;
using System.Text.RegularExpressions;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;
using Microsoft.Playwright;

namespace Appliance.WebConsole.Tests;

/// <summary>
/// A person signs in to the console through the test OpenID provider (authorization code + PKCE, Keycloak's URL
/// layout), chats in the playground and sees the answer stream in; an auditor finds that chat in the audit trail with
/// the chain verified; the chat user is refused the audit page. Screenshots of each page go to the test output
/// (console-screenshots/) for a reviewer. Every request the browser makes must stay on loopback.
/// </summary>
public sealed class ConsoleBrowserTests : IAsyncLifetime
{
    private static readonly Regex Loopback = new("^(http|ws)://127\\.0\\.0\\.1:", RegexOptions.Compiled);
    private const int TokenSeconds = 10;
    private readonly TempFolder _root = new("console");
    private readonly List<string> _outsideRequests = [];
    private OidcProvider? _oidc;
    private HostProcess? _host;
    private IPlaywright? _playwright;
    private IBrowser? _browser;

    public static string ScreenshotFolder { get; } = Path.Combine(AppContext.BaseDirectory, "console-screenshots");

    public async Task InitializeAsync()
    {
        var port = HostProcess.FreePort();
        // Access tokens live 10 s and the host allows no clock skew: sessions only last because the console refreshes them.
        _oidc = await OidcProvider.StartAsync(TokenSeconds, $"http://127.0.0.1:{port}");
        var model = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, model);
        _host = await HostProcess.StartAsync(port,
            $"--Identity:Authority={_oidc.Authority()}", "--Identity:RequireHttpsMetadata=false", $"--Appliance:DataFolder={_root.Combine("data")}",
            $"--Models:tiny:Path={model}", "--Appliance:BuiltInEmbeddings=false", "--Quotas:User:TokensPerDay=100000",
            "--Identity:Roles:TeamLead=appliance-team-lead", "--Identity:ClockSkew=00:00:00", "--Logging:LogLevel:Default=Warning",
            "--Pricing:Currency=EUR", "--Pricing:Models:tiny:InputPerMillion=1000000", "--Pricing:Models:tiny:OutputPerMillion=1000000");
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = "/usr/bin/chromium", Headless = true });
        Directory.CreateDirectory(ScreenshotFolder);
    }

    [Fact]
    public async Task A_person_chats_in_the_playground_an_auditor_finds_it_and_a_chat_user_is_refused_the_audit_page()
    {
        // ada (chat role) signs in and chats.
        var ada = await SignedInPageAsync("ada", "/console/playground");
        await Assertions.Expect(ada.GetByRole(AriaRole.Heading, new() { Name = "Playground" })).ToBeVisibleAsync();
        await SendWhenInteractiveAsync(ada, "Hello from the browser test");
        await Assertions.Expect(ada.GetByTestId("stats")).ToContainTextAsync("first token after", new() { Timeout = 60_000 });
        var transcript = await ada.GetByTestId("transcript").InnerTextAsync();
        Assert.Contains("user: Hello from the browser test", transcript, StringComparison.Ordinal);
        Assert.Matches(new Regex("assistant:\\s+\\S"), transcript); // streamed text arrived
        Assert.Contains("prompt + ", await ada.GetByTestId("stats").InnerTextAsync(), StringComparison.Ordinal);
        await ada.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotFolder, "playground.png"), FullPage = true });

        // ada may not open the audit trail: a clear page, status 403.
        var refused = await ada.GotoAsync($"{_host!.Address}console/audit");
        Assert.Equal(403, refused!.Status);
        await Assertions.Expect(ada.GetByRole(AriaRole.Heading, new() { Name = "Not allowed" })).ToBeVisibleAsync();
        await ada.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotFolder, "not-allowed.png"), FullPage = true });

        // bob (auditor) finds ada's chat and the refused attempt, with the chain verified.
        var bob = await SignedInPageAsync("bob", "/console/audit");
        await Assertions.Expect(bob.GetByTestId("verification")).ToContainTextAsync("Chain verified");
        var events = await bob.GetByTestId("events").InnerTextAsync();
        Assert.Contains("/v1/chat/completions", events, StringComparison.Ordinal);
        Assert.Matches(new Regex("request\\.completed\\s+ada"), events);
        Assert.Contains("console page not allowed", events, StringComparison.Ordinal);
        Assert.DoesNotContain("/_framework/", events, StringComparison.Ordinal); // static files are not access to data
        await bob.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotFolder, "audit.png"), FullPage = true });
        var download = await bob.RunAndWaitForDownloadAsync(() => bob.GetByText("Export as JSON Lines").ClickAsync());
        var exported = await File.ReadAllLinesAsync(await download.PathAsync());
        Assert.Contains(exported, line => line.Contains("\"/v1/chat/completions\"", StringComparison.Ordinal) && line.Contains("\"ada\"", StringComparison.Ordinal));
        await bob.GotoAsync($"{_host.Address}console/audit?outcome=refused&user=ada");
        var refusals = await bob.GetByTestId("events").InnerTextAsync();
        Assert.Contains("console page not allowed", refusals, StringComparison.Ordinal);
        Assert.DoesNotContain("/v1/chat/completions", refusals, StringComparison.Ordinal); // the filter holds
        await bob.GetByTestId("events").Locator("tbody a").First.ClickAsync();
        await Assertions.Expect(bob.GetByTestId("event")).ToContainTextAsync("console page not allowed");
        await Assertions.Expect(bob.GetByTestId("event")).ToContainTextAsync("hash");
        await bob.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotFolder, "audit-event.png"), FullPage = true });

        // carol (admin) sees that chat's tokens in the usage charts, and exports them.
        var carol = await SignedInPageAsync("carol", "/console/usage");
        var modelChart = carol.GetByTestId("chart-model");
        await Assertions.Expect(modelChart.Locator("svg path").First).ToBeVisibleAsync(new() { Timeout = 30_000 }); // columns drawn
        // The table alternative sits in a closed <details>: its text is there for assistive technology either way.
        Assert.Contains("tiny", await modelChart.Locator("table").TextContentAsync() ?? string.Empty, StringComparison.Ordinal);
        Assert.Contains("ada", await carol.GetByTestId("top-users").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Contains("Cost (EUR)", await carol.GetByTestId("top-users").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Contains("tiny", await carol.GetByTestId("cost-model").InnerTextAsync(), StringComparison.Ordinal);
        Assert.Contains("tiny", await carol.GetByTestId("replica-seconds").InnerTextAsync(), StringComparison.Ordinal);
        // ada's tokens so far against her daily quota (the random model may end its answer early, so not an exact figure).
        Assert.Matches(new Regex("user ada\\s.*\\b[1-9][0-9]* of 100,000 \\(0%\\)"), await carol.GetByTestId("quotas").InnerTextAsync());
        await carol.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotFolder, "usage.png"), FullPage = true });
        var csv = await carol.RunAndWaitForDownloadAsync(() => carol.GetByText("CSV by model").ClickAsync());
        var lines = await File.ReadAllLinesAsync(await csv.PathAsync());
        Assert.Equal("day,model,requests,prompt_tokens,completion_tokens,cost,currency,unpriced_tokens", lines[0]);
        // One euro a token: the row's cost is its prompt and completion tokens added up.
        var tinyRow = lines.Single(line => line.Contains(",tiny,1,", StringComparison.Ordinal)).Split(',');
        Assert.Equal((long.Parse(tinyRow[3], CultureInfo.InvariantCulture) + long.Parse(tinyRow[4], CultureInfo.InvariantCulture)).ToString(CultureInfo.InvariantCulture), tinyRow[5]);
        Assert.Equal("EUR", tinyRow[6]);
        Assert.Equal("0", tinyRow[7]);

        // ada sees her own usage and what is left of her quota on the welcome page (no usage role needed).
        await ada.GotoAsync($"{_host.Address}console");
        var own = await ada.GetByTestId("own-usage").InnerTextAsync();
        Assert.Contains("tiny", own, StringComparison.Ordinal);
        Assert.Contains("Cost (EUR)", own, StringComparison.Ordinal);
        Assert.Matches(new Regex("[0-9,]+ of 100,000 tokens left, until [0-9-]+ 00:00 UTC"), await ada.GetByTestId("own-limits").InnerTextAsync());
        await ada.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotFolder, "home.png"), FullPage = true });

        // carol unloads the model on the Pool page (with a confirmation), sees it go, loads it again.
        var pool = await SignedInPageAsync("carol", "/console/pool");
        await Assertions.Expect(pool.GetByTestId("models")).ToContainTextAsync("cpu:0");
        await ClickWhenInteractiveAsync(pool, pool.GetByTestId("models").GetByRole(AriaRole.Button, new() { Name = "Unload" }), pool.GetByTestId("confirm"));
        await pool.GetByTestId("confirm").GetByRole(AriaRole.Button, new() { Name = "Confirm" }).ClickAsync();
        await Assertions.Expect(pool.GetByTestId("outcome")).ToContainTextAsync("Done: unload tiny", new() { Timeout = 60_000 });
        await Assertions.Expect(pool.GetByTestId("models")).ToContainTextAsync("unloaded");
        await pool.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotFolder, "pool.png"), FullPage = true });
        await pool.GetByTestId("models").GetByRole(AriaRole.Button, new() { Name = "Load" }).ClickAsync();
        await pool.GetByTestId("confirm").GetByRole(AriaRole.Button, new() { Name = "Confirm" }).ClickAsync();
        await Assertions.Expect(pool.GetByTestId("outcome")).ToContainTextAsync("Done: load tiny", new() { Timeout = 60_000 });
        await Assertions.Expect(pool.GetByTestId("models")).ToContainTextAsync("ready");
        await bob.GotoAsync($"{_host.Address}console/audit");
        var trail = await bob.GetByTestId("events").InnerTextAsync();
        Assert.Contains("unload model tiny", trail, StringComparison.Ordinal); // audited, as carol
        Assert.Matches(new Regex("audit\\.read\\s+bob"), trail); // reading the trail is itself recorded

        await KeyboardAndZoomAsync();
        await TeamLeadSeesOwnTeamAsync();
        await AnOpenPlaygroundOutlivesItsFirstTokenAsync(ada);

        Assert.True(_outsideRequests.Count == 0, $"the browser left the appliance: {string.Join(", ", _outsideRequests)}");
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }

        _playwright?.Dispose();
        _host?.Dispose();
        if (_oidc is not null)
        {
            await _oidc.DisposeAsync();
        }

        _root.Dispose();
    }

    /// <summary>A fresh browser context signed in as <paramref name="user"/> through the provider's login form, ending on <paramref name="path"/>.</summary>
    private async Task<IPage> SignedInPageAsync(string user, string path)
    {
        var context = await _browser!.NewContextAsync();
        context.Request += (_, request) =>
        {
            // Only the appliance's own pages count: the test provider's login page stands in for Keycloak's, which serves its own assets.
            var onAppliance = request.Frame.Url.StartsWith(_host!.Address.ToString(), StringComparison.Ordinal);
            if (onAppliance && !Loopback.IsMatch(request.Url) && !request.Url.StartsWith("data:", StringComparison.Ordinal))
            {
                lock (_outsideRequests)
                {
                    _outsideRequests.Add(request.Url);
                }
            }
        };
        var page = await context.NewPageAsync();
        await page.GotoAsync($"{_host!.Address}{path.TrimStart('/')}");
        // The provider's login page (its development interactions accept any password).
        await page.Locator("input[name=login]").FillAsync(user);
        await page.Locator("input[name=password]").FillAsync("any password");
        await page.Locator("button[type=submit]").ClickAsync();
        await page.WaitForURLAsync(new Regex(Regex.Escape($"{_host.Address}{path.TrimStart('/')}")), new() { Timeout = 30_000 });
        return page;
    }

    /// <summary>
    /// ada's playground has stayed open longer than her first access token lived: the console refreshed it, so the next
    /// question is answered, and a page load still finds her signed in.
    /// </summary>
    private async Task AnOpenPlaygroundOutlivesItsFirstTokenAsync(IPage ada)
    {
        var signedInBefore = DateTimeOffset.UtcNow; // ada signed in before this
        await ada.GotoAsync($"{_host!.Address}console/playground");
        await Task.Delay(TimeSpan.FromSeconds(TokenSeconds + 2)); // the token the page connected with has expired
        await SendWhenInteractiveAsync(ada, "Still there?");
        await Assertions.Expect(ada.GetByTestId("stats")).ToContainTextAsync("first token after", new() { Timeout = 60_000 });
        Assert.Equal(0, await ada.GetByTestId("error").CountAsync());
        await Task.Delay(TimeSpan.FromSeconds(TokenSeconds + 2));
        var response = await ada.GotoAsync($"{_host.Address}console");
        Assert.Equal(200, response!.Status);
        Assert.EndsWith("/console", ada.Url, StringComparison.Ordinal); // not sent back to the login page

        // Signing out ends the console session, and sends the browser to the realm to end its session there too: with
        // the ID token and the client named, as Keycloak requires (without them it keeps the session).
        var realmLogout = ada.WaitForRequestAsync(r => r.Url.Contains("/protocol/openid-connect/logout", StringComparison.Ordinal), new() { Timeout = 30_000 });
        await ada.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        var logoutUrl = (await realmLogout).Url;
        Assert.Contains("id_token_hint=ey", logoutUrl, StringComparison.Ordinal);
        // The ID token the realm sent with the refreshed tokens, not the one from signing in (a realm may refuse an
        // expired hint and keep the session).
        var hint = System.Web.HttpUtility.ParseQueryString(new Uri(logoutUrl).Query)["id_token_hint"]!;
        Assert.True(new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(hint).IssuedAt > signedInBefore.UtcDateTime.AddSeconds(TokenSeconds / 2.0),
            "the sign-out should carry the ID token of the latest refresh");
        Assert.Contains($"client_id={OidcProvider.ConsoleClient}", logoutUrl, StringComparison.Ordinal);
        await ada.WaitForURLAsync(url => !url.EndsWith("/console", StringComparison.Ordinal), new() { Timeout = 30_000 });
        var cookies = await ada.Context.CookiesAsync([_host.Address.ToString()]);
        Assert.DoesNotContain(cookies, c => c.Name.StartsWith("appliance-console", StringComparison.Ordinal));
    }

    /// <summary>dave, a team lead in /research, chats, then sees his team's usage on the Usage page and nobody else's.</summary>
    private async Task TeamLeadSeesOwnTeamAsync()
    {
        var dave = await SignedInPageAsync("dave", "/console/playground");
        await SendWhenInteractiveAsync(dave, "A question from research");
        await Assertions.Expect(dave.GetByTestId("stats")).ToContainTextAsync("first token after", new() { Timeout = 60_000 });
        await dave.GotoAsync($"{_host!.Address}console/usage");
        await Assertions.Expect(dave.GetByTestId("scope")).ToContainTextAsync("/research");
        var top = await dave.GetByTestId("top-users").InnerTextAsync();
        Assert.Contains("dave", top, StringComparison.Ordinal);
        Assert.DoesNotContain("ada", top, StringComparison.Ordinal); // ada belongs to no team of dave's
        var teams = await dave.GetByTestId("chart-team").Locator("table").TextContentAsync() ?? string.Empty;
        Assert.Contains("/research", teams, StringComparison.Ordinal);
        Assert.DoesNotContain("(none)", teams, StringComparison.Ordinal);
        Assert.Equal(0, await dave.GetByTestId("quotas").CountAsync()); // node-wide figures are for administrators
        IDownload? csv = null;
        for (var attempt = 1; csv is null; attempt++)
        {
            try
            {
                csv = await dave.RunAndWaitForDownloadAsync(() => dave.GetByText("CSV by user").ClickAsync(), new() { Timeout = 15_000 });
            }
            catch (TimeoutException) when (attempt < 3)
            {
                // A click while the prerendered page turns interactive (its links drawn again) can be lost: once more.
            }
        }

        var lines = await File.ReadAllLinesAsync(await csv.PathAsync());
        Assert.Contains(lines, l => l.Contains(",dave,", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains(",ada,", StringComparison.Ordinal));
        await dave.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotFolder, "usage-team-lead.png"), FullPage = true });
    }

    /// <summary>
    /// At 200% zoom (a 640 by 400 CSS pixel viewport, drawn at twice the density) every page reflows without sideways
    /// scrolling, and the playground works from the keyboard alone: Tab to the message, type, Tab to Send, Enter.
    /// </summary>
    private async Task KeyboardAndZoomAsync()
    {
        var context = await _browser!.NewContextAsync(new() { ViewportSize = new() { Width = 640, Height = 400 }, DeviceScaleFactor = 2 });
        var page = await context.NewPageAsync();
        await page.GotoAsync($"{_host!.Address}console/playground");
        await page.Locator("input[name=login]").FillAsync("ada");
        await page.Locator("input[name=password]").FillAsync("any password");
        await page.Locator("button[type=submit]").ClickAsync();
        await page.WaitForURLAsync(new Regex("/console/playground$"), new() { Timeout = 30_000 });
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Playground" })).ToBeVisibleAsync();
        Assert.True(await page.EvaluateAsync<bool>("document.documentElement.scrollWidth <= window.innerWidth"), "the playground scrolls sideways at 200% zoom");

        // Keyboard only. The first keystrokes may land before the interactive circuit takes over, so retry until Send enables.
        var send = page.GetByRole(AriaRole.Button, new() { Name = "Send" });
        var deadline = DateTime.UtcNow.AddSeconds(30);
        do
        {
            Assert.True(DateTime.UtcNow < deadline, "the playground never took keyboard input");
            await page.Locator("body").FocusAsync();
            for (var tab = 0; tab < 15 && await page.EvaluateAsync<string>("document.activeElement?.id ?? ''") != "message"; tab++)
            {
                await page.Keyboard.PressAsync("Tab");
            }

            await page.Keyboard.PressAsync("Control+A");
            await page.Keyboard.TypeAsync("Typed with the keyboard");
            await Task.Delay(250);
        }
        while (!await send.IsEnabledAsync());

        await page.Keyboard.PressAsync("Tab");
        Assert.Equal("Send", (await page.EvaluateAsync<string>("document.activeElement?.innerText ?? ''")).Trim(), ignoreCase: true);
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.GetByTestId("stats")).ToContainTextAsync("first token after", new() { Timeout = 60_000 });
        Assert.Contains("user: Typed with the keyboard", await page.GetByTestId("transcript").InnerTextAsync(), StringComparison.Ordinal);
        await page.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotFolder, "playground-200-percent.png"), FullPage = true });
        await context.DisposeAsync();
    }

    /// <summary>Clicks until the interactive circuit has taken over the prerendered page (what should appear does).</summary>
    private static async Task ClickWhenInteractiveAsync(IPage page, ILocator button, ILocator appears)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await appears.IsVisibleAsync())
        {
            Assert.True(DateTime.UtcNow < deadline, "the page never became interactive");
            await button.ClickAsync();
            await Task.Delay(250);
        }
    }

    /// <summary>Types until the interactive circuit has taken over the prerendered page (the Send button enables), then sends.</summary>
    private static async Task SendWhenInteractiveAsync(IPage page, string message)
    {
        var send = page.GetByRole(AriaRole.Button, new() { Name = "Send" });
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await send.IsEnabledAsync())
        {
            Assert.True(DateTime.UtcNow < deadline, "the playground never became interactive");
            await page.Locator("#message").FillAsync(message);
            await Task.Delay(250);
        }

        await send.ClickAsync();
    }
}
