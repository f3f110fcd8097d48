using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Host;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;
using Microsoft.Extensions.Options;

namespace Appliance.IntegrationTests.Host;

/// <summary>Start-up behaviour: bad settings stop the process naming the key; a broken model is reported, not served.</summary>
public sealed class HostStartupTests : IDisposable
{
    private readonly TempFolder _root = new("appliance-startup");

    [Fact]
    public async Task A_bad_setting_stops_start_up_with_a_message_naming_the_key()
    {
        var folder = WriteModel("good");
        await using var app = ApplianceApp.Create(["--urls=http://127.0.0.1:0", "--environment=Development", $"--Models:good:Path={folder}", "--Models:good:MaxBatchSize=0", "--Models:good:ChatTemplate=vicuna", "--Models:ghost:Path=/no/such/folder"]);

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains("Models:good:MaxBatchSize", error.Message, StringComparison.Ordinal);
        Assert.Contains("Models:good:ChatTemplate", error.Message, StringComparison.Ordinal);
        Assert.Contains("Models:ghost:Path", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_request_timeout_a_timer_cannot_hold_or_a_grace_under_a_second_stops_start_up_naming_the_key()
    {
        // 30 days would overflow .NET's timer and fail every generation request instead.
        await using var app = ApplianceApp.Create(["--urls=http://127.0.0.1:0", "--environment=Development", "--Appliance:BuiltInEmbeddings=false",
            "--Limits:RequestTimeout=30.00:00:00", "--Limits:RequestTimeoutGrace=00:00:00"]);

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains("Limits:RequestTimeout must be positive and at most 24 days", error.Message, StringComparison.Ordinal);
        Assert.Contains("Limits:RequestTimeoutGrace must be", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_size_cap_with_the_postgresql_store_stops_start_up_rather_than_being_passed_over()
    {
        // The cap only ever applied to the SQLite file: with PostgreSQL it would promise a limit nothing enforces.
        var error = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            await using var app = ApplianceApp.Create(["--urls=http://127.0.0.1:0", "--environment=Development", "--Appliance:BuiltInEmbeddings=false",
                "--Audit:Store=postgresql", "--Audit:PostgresConnectionString=Host=127.0.0.1;Port=1", "--Audit:MaxSizeBytes=1000000"]);
            await app.StartAsync();
        });
        Assert.Contains("Audit:MaxSizeBytes caps the SQLite file only", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://0.0.0.0:0")]
    [InlineData("http://unix:8080")] // a host named "unix": Kestrel binds it on every interface
    [InlineData("http://UNIX:/tmp/appliance.sock")]
    public async Task The_development_identity_refuses_an_address_other_than_loopback_or_a_unix_socket(string url)
    {
        await using var app = ApplianceApp.Create([$"--urls={url}", "--environment=Development", "--Appliance:BuiltInEmbeddings=false"]);

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains($"serves loopback only, but the appliance would listen on {url}", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_model_that_fails_verification_answers_503_and_the_node_serves_the_others()
    {
        var good = WriteModel("good");
        var broken = WriteModel("broken");
        File.AppendAllText(Path.Combine(broken, "genai_config.json"), " ");
        await using var running = await RunningAppliance.StartAsync($"--Models:good:Path={good}", $"--Models:broken:Path={broken}", "--Logging:LogLevel:Default=None", "--Appliance:BuiltInEmbeddings=false");
        var http = running.Http;

        await WaitForState(http, "broken", "failed");
        await WaitForState(http, "good", "ready");
        // The node can serve "good", so it stays in the load balancer; /health/models says what is down.
        var (status, body) = await ReadinessAfterStartup(http);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("1 of 2 models serving, 1 failed", body, StringComparison.Ordinal);
        Assert.DoesNotContain("broken", body, StringComparison.Ordinal); // anonymous: counts, not model ids
        using (var states = JsonDocument.Parse(await http.GetStringAsync("/health/models")))
        {
            var brokenState = states.RootElement.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("id").GetString() == "broken");
            Assert.Equal("failed", brokenState.GetProperty("state").GetString());
        }

        using var response = await http.PostAsync("/v1/chat/completions", new StringContent("""{"model":"broken","messages":[{"role":"user","content":"x"}]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("model_unavailable", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var served = await http.PostAsync("/v1/chat/completions", new StringContent("""{"model":"good","messages":[{"role":"user","content":"x"}],"max_tokens":2}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
    }

    [Fact]
    public async Task A_model_whose_files_fail_in_an_unexpected_way_fails_alone()
    {
        // A tokenizer.json edited by hand: an added token without its id. The reader's KeyNotFoundException was not
        // among the failures a load expected, so the model stayed "loading" and the start's loader ended.
        var good = WriteModel("good");
        var odd = WriteModel("odd");
        var tokenizer = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(odd, "tokenizer.json")))!;
        var added = tokenizer["added_tokens"]!.AsArray();
        Assert.NotEmpty(added);
        added[0]!.AsObject().Remove("id");
        File.WriteAllText(Path.Combine(odd, "tokenizer.json"), tokenizer.ToJsonString());
        Appliance.Runtime.Onnx.Models.ModelManifest.Create(odd);
        await using var running = await RunningAppliance.StartAsync($"--Models:good:Path={good}", $"--Models:odd:Path={odd}", "--Logging:LogLevel:Default=None", "--Appliance:BuiltInEmbeddings=false");

        await WaitForState(running.Http, "odd", "failed");
        await WaitForState(running.Http, "good", "ready");
        using var served = await running.Http.PostAsync("/v1/chat/completions", new StringContent("""{"model":"good","messages":[{"role":"user","content":"x"}],"max_tokens":2}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
    }

    [Fact]
    public async Task A_required_model_that_cannot_serve_keeps_the_node_unready()
    {
        var good = WriteModel("good");
        var broken = WriteModel("broken");
        File.AppendAllText(Path.Combine(broken, "genai_config.json"), " ");
        await using var running = await RunningAppliance.StartAsync(
            $"--Models:good:Path={good}", $"--Models:broken:Path={broken}", "--Models:broken:Required=true", "--Logging:LogLevel:Default=None", "--Appliance:BuiltInEmbeddings=false");
        var http = running.Http;

        await WaitForState(http, "broken", "failed");
        await WaitForState(http, "good", "ready");
        var (status, body) = await ReadinessAfterStartup(http);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Contains("1 required models cannot serve", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_installed_node_without_models_serves_no_demo_model_and_says_what_it_serves()
    {
        // Appliance:DemoModel=false, as appliance/appsettings.Production.json and Ansible set it: nothing that looks
        // like a chat model and answers noise; the embedding model still serves, and readiness counts it.
        await using var running = await RunningAppliance.StartAsync("--Appliance:DemoModel=false", "--Logging:LogLevel:Default=None");
        var http = running.Http;
        var (status, body) = await ReadinessAfterStartup(http);
        Assert.True(status == HttpStatusCode.OK, body);
        Assert.Contains("1 of 1 models serving", body, StringComparison.Ordinal);
        var models = await http.GetStringAsync("/v1/models");
        Assert.DoesNotContain("\"id\":\"demo\"", models, StringComparison.Ordinal);
        Assert.Contains(Appliance.Runtime.Onnx.Embeddings.MiniLmPackage.ModelId, models, StringComparison.Ordinal);
        using var chat = await http.PostAsync("/v1/chat/completions", new StringContent(
            """{"model":"demo","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.NotFound, chat.StatusCode);

        // Without the embedding model too, the node declares nothing and is ready all the same: a first install waits
        // for its ready check before the models role lists any model.
        await using var empty = await RunningAppliance.StartAsync("--Appliance:DemoModel=false", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None");
        (status, body) = await ReadinessAfterStartup(empty.Http);
        Assert.True(status == HttpStatusCode.OK && body.Contains("no models declared", StringComparison.Ordinal), body);
    }

    [Fact]
    public async Task The_built_in_embedding_model_alone_does_not_make_a_chat_node_ready()
    {
        var broken = WriteModel("broken");
        File.AppendAllText(Path.Combine(broken, "genai_config.json"), " ");
        await using var running = await RunningAppliance.StartAsync($"--Models:broken:Path={broken}", "--Logging:LogLevel:Default=None");
        var http = running.Http;

        await WaitForState(http, "broken", "failed");
        var (status, body) = await ReadinessAfterStartup(http);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Contains("no model can serve", body, StringComparison.Ordinal);
        using var anonymous = running.ClientWith(null);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/health/models")).StatusCode); // ids are not public
    }

    [Fact]
    public async Task A_full_queue_answers_429_with_retry_after()
    {
        var folder = WriteModel("small-queue", contextLength: 4096);
        await using var running = await RunningAppliance.StartAsync(
            $"--Models:q:Path={folder}", "--Models:q:MaxBatchSize=1", "--Models:q:MaxQueuedRequests=1",
            "--Limits:MaxTokens=4000", "--Logging:LogLevel:Default=None", "--Appliance:BuiltInEmbeddings=false");
        var http = running.Http;
        await WaitForState(http, "q", "ready");

        var body = """{"model":"q","messages":[{"role":"user","content":"x"}],"max_tokens":4000,"stream":true,"ignore_eos":true}""";
        var responses = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ =>
            http.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") }, HttpCompletionOption.ResponseHeadersRead)));

        var refused = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.NotEmpty(refused);
        Assert.All(refused, r => Assert.NotNull(r.Headers.RetryAfter));
        Assert.Contains("rate_limit_exceeded", await refused[0].Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Contains(responses, r => r.StatusCode == HttpStatusCode.OK);

        // Refused by the engine, so audited as refused and never as accepted (nor charged to the caller's quotas).
        var refusedIds = refused.Select(r => r.Headers.GetValues("X-Request-Id").Single()).ToHashSet();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            using var records = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/audit/events?limit=200"));
            var ofRefused = records.RootElement.GetProperty("data").EnumerateArray()
                .Where(e => refusedIds.Contains(e.GetProperty("requestId").GetString()!)).Select(e => (e.GetProperty("kind").GetString(), e.GetProperty("status").GetInt32())).ToList();
            Assert.DoesNotContain(ofRefused, r => r.Item1 == "request.accepted");
            if (ofRefused.Count(r => r == ("request.refused", 429)) == refusedIds.Count)
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, string.Join(", ", ofRefused));
            await Task.Delay(50);
        }

        foreach (var response in responses)
        {
            response.Dispose();
        }
    }

    public void Dispose() => _root.Dispose();

    private string WriteModel(string name, int contextLength = 256)
    {
        var folder = _root.Combine(name);
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { ContextLength = contextLength }, folder);
        return folder;
    }

    /// <summary>/health/ready once the declared models have each been tried.</summary>
    private static async Task<(HttpStatusCode Status, string Body)> ReadinessAfterStartup(HttpClient http)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            using var response = await http.GetAsync("/health/ready");
            var body = await response.Content.ReadAsStringAsync();
            if (!body.Contains("loading the declared models", StringComparison.Ordinal) || DateTime.UtcNow > deadline)
            {
                return (response.StatusCode, body);
            }

            await Task.Delay(50);
        }
    }

    private static async Task WaitForState(HttpClient http, string model, string state)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var json = JsonDocument.Parse(await http.GetStringAsync($"/v1/models/{model}")).RootElement;
            if (json.GetProperty("state").GetString() == state)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"model {model} never reached state {state}");
            await Task.Delay(50);
        }
    }
}
