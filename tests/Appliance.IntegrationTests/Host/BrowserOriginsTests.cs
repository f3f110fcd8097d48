using System.Net;
using Appliance.Host;

namespace Appliance.IntegrationTests.Host;

/// <summary>
/// A chat UI that calls the API from the browser (another origin) needs CORS: allowed for the origins listed in
/// Appliance:CorsOrigins on /v1 only, answered to nobody else, and off by default.
/// </summary>
public sealed class BrowserOriginsTests
{
    private const string ChatUi = "https://chat.example.org";

    [Fact]
    public async Task Listed_origins_may_call_v1_from_the_browser_and_no_one_else()
    {
        await using var running = await RunningAppliance.StartAsync("--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None",
            $"--Appliance:CorsOrigins:0={ChatUi}/", "--Appliance:CorsOrigins:1=http://10.0.0.5:3000");

        using (var preflight = await PreflightAsync(running, ChatUi, "/v1/chat/completions"))
        {
            Assert.Equal(HttpStatusCode.NoContent, preflight.StatusCode); // before authentication: the browser sends no token with it
            Assert.Equal(ChatUi, preflight.Headers.GetValues("Access-Control-Allow-Origin").Single());
            Assert.Contains("authorization", preflight.Headers.GetValues("Access-Control-Allow-Headers").Single(), StringComparison.OrdinalIgnoreCase);
            Assert.False(preflight.Headers.Contains("Access-Control-Allow-Credentials"));
        }

        using (var stranger = await PreflightAsync(running, "https://evil.example.net", "/v1/chat/completions"))
        {
            Assert.False(stranger.Headers.Contains("Access-Control-Allow-Origin"));
        }

        using (var admin = await PreflightAsync(running, ChatUi, "/admin/pool"))
        {
            Assert.False(admin.Headers.Contains("Access-Control-Allow-Origin")); // /v1 only
        }

        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.Add("Origin", ChatUi);
        using var answer = await running.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(ChatUi, answer.Headers.GetValues("Access-Control-Allow-Origin").Single());
        var exposed = answer.Headers.GetValues("Access-Control-Expose-Headers").Single();
        Assert.Contains("X-Request-Id", exposed, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("x-ratelimit-remaining-tokens", exposed, StringComparison.OrdinalIgnoreCase); // a browser client may read its quotas
        Assert.Contains("anthropic-ratelimit-requests-reset", exposed, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Without_the_setting_no_origin_is_allowed_and_a_wildcard_is_refused_at_start()
    {
        await using (var running = await RunningAppliance.StartAsync("--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None"))
        {
            using var preflight = await PreflightAsync(running, ChatUi, "/v1/chat/completions");
            Assert.False(preflight.Headers.Contains("Access-Control-Allow-Origin"));
        }

        var wildcard = await Assert.ThrowsAsync<SettingsException>(() => RunningAppliance.StartAsync("--Appliance:CorsOrigins:0=*"));
        Assert.Contains("list the chat UIs' origins", wildcard.Message, StringComparison.Ordinal);
        var path = await Assert.ThrowsAsync<SettingsException>(() => RunningAppliance.StartAsync("--Appliance:CorsOrigins:0=https://chat.example.org/app"));
        Assert.Contains("is not an origin", path.Message, StringComparison.Ordinal);
    }

    private static Task<HttpResponseMessage> PreflightAsync(RunningAppliance running, string origin, string path)
    {
        var preflight = new HttpRequestMessage(HttpMethod.Options, path);
        preflight.Headers.Add("Origin", origin);
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "authorization,content-type");
        return running.Http.SendAsync(preflight);
    }
}
