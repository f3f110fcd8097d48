using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Host;

/// <summary>The admin API an operator (and the Ansible rolling upgrade) uses: pool state, drain, resume.</summary>
public sealed class NodeAdminTests : IDisposable
{
    private readonly TempFolder _root = new("node-admin");

    [Fact]
    public async Task Draining_turns_new_requests_away_lets_running_streams_finish_and_answers_when_idle()
    {
        var model = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { ContextLength = 4096 }, model);
        await using var running = await RunningAppliance.StartAsync($"--Models:tiny:Path={model}", "--Limits:MaxTokens=4000",
            "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None");
        await running.WaitUntilReadyAsync();
        var http = running.Http;

        using var pool = JsonDocument.Parse(await http.GetStringAsync("/admin/pool"));
        Assert.Contains(pool.RootElement.GetProperty("devices").EnumerateArray(), d => d.GetProperty("id").GetString() == "cpu:0"); // no GPU here
        Assert.Equal("ready", pool.RootElement.GetProperty("models")[0].GetProperty("state").GetString());

        // A long stream is running when the drain starts.
        using var streamRequest = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":1500,"ignore_eos":true}""", Encoding.UTF8, "application/json"),
        };
        using var stream = await http.SendAsync(streamRequest, HttpCompletionOption.ResponseHeadersRead);
        var body = stream.Content.ReadAsStringAsync();

        using (var first = await http.PostAsync("/admin/drain?timeout=0.2", null))
        {
            Assert.Equal(HttpStatusCode.Accepted, first.StatusCode); // still busy
            Assert.Equal(1, JsonDocument.Parse(await first.Content.ReadAsStringAsync()).RootElement.GetProperty("inFlight").GetInt32());
        }

        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync("/health/ready")).StatusCode); // out of the load balancer
        using (var refused = await http.PostAsync("/v1/chat/completions", new StringContent(
            """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.NotNull(refused.Headers.RetryAfter);
            Assert.Contains("\"code\":\"draining\"", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var idle = await http.PostAsync("/admin/drain?timeout=120", null))
        {
            Assert.Equal(HttpStatusCode.OK, idle.StatusCode);
            Assert.True(JsonDocument.Parse(await idle.Content.ReadAsStringAsync()).RootElement.GetProperty("idle").GetBoolean());
        }

        Assert.EndsWith("data: [DONE]\n\n", await body, StringComparison.Ordinal); // the running stream finished whole

        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/admin/resume", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/ready")).StatusCode);
        using var events = JsonDocument.Parse(await http.GetStringAsync("/audit/events?kind=admin.action"));
        var details = events.RootElement.GetProperty("data").EnumerateArray().Select(e => e.GetProperty("detail").GetString()).ToList();
        Assert.Contains("drain the node", details);
        Assert.Contains("resume admitting requests", details);
    }

    [Fact]
    public async Task Odd_values_on_the_admin_and_audit_apis_are_problem_details_not_failures()
    {
        await using var running = await RunningAppliance.StartAsync("--Identity:ApiKeys:Enabled=true", "--Identity:ApiKeys:ServiceOwners:0=svc",
            "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None");
        var http = running.Http;

        foreach (var timeout in new[] { "NaN", "Infinity", "-1" })
        {
            using var drain = await http.PostAsync($"/admin/drain?timeout={timeout}", null);
            Assert.Equal(HttpStatusCode.BadRequest, drain.StatusCode);
            Assert.Equal("application/problem+json", drain.Content.Headers.ContentType?.MediaType);
        }

        using (var earliest = await http.GetAsync("/audit/usage?to=0001-01-01T00:00:00Z"))
        {
            Assert.Equal(HttpStatusCode.BadRequest, earliest.StatusCode); // no 30 days before the first day: 'from' is not before 'to'
        }

        using var key = await http.PostAsync("/admin/api-keys", new StringContent(
            """{"owner":"\ud800","name":"job","roles":["appliance-user"]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, key.StatusCode);
        Assert.Contains("not valid Unicode", await key.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_admin_api_needs_the_admin_role()
    {
        var model = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, model);
        await using var running = await RunningAppliance.StartAsync($"--Models:tiny:Path={model}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None");
        using var user = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        Assert.Equal(HttpStatusCode.Forbidden, (await user.PostAsync("/admin/drain", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await user.GetAsync("/admin/pool")).StatusCode);
        using var pool = JsonDocument.Parse(await running.Http.GetStringAsync("/admin/pool"));
        Assert.False(pool.RootElement.GetProperty("draining").GetBoolean()); // the refused drain changed nothing
    }

    public void Dispose() => _root.Dispose();
}
