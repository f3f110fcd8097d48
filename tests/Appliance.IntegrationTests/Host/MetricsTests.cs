using System.Globalization;
using System.Net;
using System.Text;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Host;

/// <summary>/metrics: a Prometheus exposition, for administrators only, whose values move as requests run.</summary>
public sealed class MetricsTests : IDisposable
{
    private readonly TempFolder _root = new("metrics");

    [Fact]
    public async Task The_exposition_counts_requests_and_tokens_per_model_and_needs_the_admin_role()
    {
        var model = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, model);
        // Meters are process-wide and other tests' hosts serve "tiny" in this process too: a model name of its own.
        await using var running = await RunningAppliance.StartAsync($"--Models:metrics-probe:Path={model}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None",
            "--Pricing:Currency=EUR", "--Pricing:Models:metrics-probe:InputPerMillion=1000000", "--Pricing:Models:metrics-probe:OutputPerMillion=2000000");
        await running.WaitUntilReadyAsync();

        using (var user = running.ClientWith(running.MintToken("ada", ["appliance-user"])))
        {
            Assert.Equal(HttpStatusCode.Forbidden, (await user.GetAsync("/metrics")).StatusCode);
            for (var i = 0; i < 3; i++)
            {
                using var response = await user.PostAsync("/v1/chat/completions", new StringContent(
                    """{"model":"metrics-probe","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"ignore_eos":true}""", Encoding.UTF8, "application/json"));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            // Counting at the root tokenizer path is measured too, as what it is: no tokens, no cost.
            using var tokenized = await user.PostAsync("/tokenize", new StringContent("""{"prompt":"count me"}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, tokenized.StatusCode);
        }

        var text = await running.Http.GetStringAsync("/metrics");
        Assert.Equal(1, Sample(text, "appliance_requests_total", "model=\"metrics-probe\",outcome=\"tokenized\",tenant=\"user:"));
        const string probe = "model=\"metrics-probe\"";
        Assert.Equal(12, Sample(text, "appliance_generated_tokens_total", probe));
        Assert.Equal(3, Sample(text, "appliance_requests_total", probe + ",outcome=\"length\",tenant=\"user:"));
        Assert.Equal(3, Sample(text, "appliance_time_to_first_token_seconds_count", probe));
        Assert.Equal(3, Sample(text, "appliance_inter_token_latency_seconds_count", probe));
        Assert.Equal(0, Sample(text, "appliance_running_requests", probe));
        // One euro a prompt token, two a generated one.
        Assert.Equal(Sample(text, "appliance_prompt_tokens_total", probe) + 24, Sample(text, "appliance_cost_total", probe + ",tenant=\"user:"));
        Assert.Contains("currency=\"EUR\"", text.Split('\n').Single(l => l.StartsWith("appliance_cost_total{", StringComparison.Ordinal) && l.Contains(probe, StringComparison.Ordinal)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_long_rope_model_counts_the_steps_it_runs_in_two_in_the_metrics_and_the_pool()
    {
        var model = _root.Combine("longrope");
        SyntheticModelFolder.Write(SyntheticModelSpec.TinyLlama with { LongRopeSwitch = 20, ContextLength = 2048 }, model);
        await using var running = await RunningAppliance.StartAsync($"--Models:longrope-probe:Path={model}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None");
        await running.WaitUntilReadyAsync();

        // A short prompt arrives while one past the switch decodes (1,500 tokens to go, a few seconds: 150 were done
        // before the short one came in on a busy machine): rows on both sides in one step.
        var longText = string.Join(' ', Enumerable.Repeat("a longer question", 20));
        using var longRequest = new HttpRequestMessage(HttpMethod.Post, "/v1/completions")
        {
            Content = new StringContent($$"""{"model":"longrope-probe","prompt":"{{longText}}","max_tokens":1500,"ignore_eos":true,"stream":true}""", Encoding.UTF8, "application/json"),
        };
        using var longAnswer = await running.Http.SendAsync(longRequest, HttpCompletionOption.ResponseHeadersRead);
        using var longStream = new StreamReader(await longAnswer.Content.ReadAsStreamAsync());
        Assert.NotNull(await longStream.ReadLineAsync()); // decoding
        using var shortAnswer = await running.Http.PostAsync("/v1/completions", new StringContent(
            """{"model":"longrope-probe","prompt":"hi","max_tokens":8,"ignore_eos":true}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, shortAnswer.StatusCode);
        Assert.Contains("[DONE]", await longStream.ReadToEndAsync(), StringComparison.Ordinal);

        Assert.True(Sample(await running.Http.GetStringAsync("/metrics"), "appliance_rotary_split_steps_total", "model=\"longrope-probe\"") > 0);
        using var pool = System.Text.Json.JsonDocument.Parse(await running.Http.GetStringAsync("/admin/pool"));
        var replica = pool.RootElement.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("id").GetString() == "longrope-probe").GetProperty("replicas")[0];
        Assert.True(replica.GetProperty("splitSteps").GetInt64() > 0);
    }

    [Fact]
    public async Task A_management_url_serves_metrics_there_without_a_token_and_nowhere_else()
    {
        var model = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, model);
        var port = HostProcess.FreePort();
        await using var running = await RunningAppliance.StartAsync($"--Models:management-probe:Path={model}", $"--Metrics:ManagementUrl=http://127.0.0.1:{port}",
            "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None");
        await running.WaitUntilReadyAsync();
        using var scraper = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") }; // no token, as Prometheus scrapes

        var text = await scraper.GetStringAsync("/metrics");
        Assert.Contains("appliance_kv_cache_capacity_tokens", text, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await running.Http.GetAsync("/metrics")).StatusCode); // not on the API port, even for an admin
        using var forged = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        forged.Headers.Host = $"127.0.0.1:{port}";
        Assert.Equal(HttpStatusCode.NotFound, (await running.Http.SendAsync(forged)).StatusCode); // the Host header does not decide
        Assert.Equal(HttpStatusCode.NotFound, (await scraper.GetAsync("/v1/models")).StatusCode); // the API is not on the management port
        Assert.Equal(HttpStatusCode.OK, (await scraper.GetAsync("/health/live")).StatusCode);
    }

    [Theory]
    [InlineData("--urls=http://127.0.0.1:18093", "http://127.0.0.2:18093")] // another address, the same port
    [InlineData("--urls=http://+:18093", "http://10.0.20.11:18093")]
    public void A_management_url_on_the_apis_port_stops_start_up_naming_it(string urls, string management)
    {
        var error = Assert.Throws<Appliance.Host.SettingsException>(() =>
            Appliance.Host.ApplianceApp.Create(["--environment=Development", urls, $"--Metrics:ManagementUrl={management}"]));
        Assert.Contains("Metrics:ManagementUrl must use a port of its own", error.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _root.Dispose();

    /// <summary>The value of the first sample of a metric whose labels contain <paramref name="label"/>.</summary>
    private static double Sample(string exposition, string metric, string label)
    {
        var line = exposition.Split('\n').FirstOrDefault(l =>
            (l.StartsWith(metric + "{", StringComparison.Ordinal) || l.StartsWith(metric + " ", StringComparison.Ordinal)) && l.Contains(label, StringComparison.Ordinal));
        Assert.True(line is not null, $"no sample of {metric} with {label} in:\n{string.Join("\n", exposition.Split('\n').Where(l => l.StartsWith("appliance", StringComparison.Ordinal)))}");
        return double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }
}
