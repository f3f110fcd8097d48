using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;
using Microsoft.Extensions.DependencyInjection;

namespace Appliance.IntegrationTests.Host;

/// <summary>Replicas on CPU slots, placement refusals, and load/unload/reload through the admin API, all audited.</summary>
public sealed class PoolAdminTests : IDisposable
{
    private const long SlotMemory = 2L << 30;
    private readonly TempFolder _root = new("pool-admin");

    [Fact]
    public async Task Replicas_are_placed_on_separate_slots_and_share_the_requests()
    {
        var model = Model("tiny");
        await using var running = await Start($"--Models:tiny:Path={model}", "--Models:tiny:Replicas=2", "--Models:tiny:MemoryBytes=104857600");
        var http = running.Http;

        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => http.PostAsync("/v1/chat/completions", Chat("tiny", 8))));
        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.StatusCode));

        using var pool = JsonDocument.Parse(await http.GetStringAsync("/admin/pool"));
        var replicas = pool.RootElement.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("id").GetString() == "tiny").GetProperty("replicas").EnumerateArray().ToList();
        Assert.Equal(["cpu:0", "cpu:1"], replicas.Select(r => r.GetProperty("device").GetString()).Order());
        Assert.All(replicas, r => Assert.True(r.GetProperty("healthy").GetBoolean()));
        var placed = pool.RootElement.GetProperty("devices").EnumerateArray().Select(d => d.GetProperty("memoryPlacedBytes").GetInt64());
        Assert.All(placed, bytes => Assert.Equal(104857600, bytes));
    }

    [Fact]
    public async Task A_model_that_fits_nowhere_is_refused_with_the_devices_named()
    {
        await using var running = await Start(waitUntilReady: false, $"--Models:tiny:Path={Model("tiny")}", $"--Models:huge:Path={Model("huge")}", $"--Models:huge:MemoryBytes={SlotMemory * 2}");
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while ((await running.Http.GetStringAsync("/admin/pool")).Contains("\"loading\"", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        await running.WaitUntilReadyAsync(); // "tiny" serves, so a failed "huge" keeps the node in the load balancer

        using var pool = JsonDocument.Parse(await running.Http.GetStringAsync("/admin/pool"));
        var huge = pool.RootElement.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("id").GetString() == "huge");
        Assert.Equal("failed", huge.GetProperty("state").GetString());
        Assert.Contains("fits on no CPU slot", huge.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Contains("cpu:0", huge.GetProperty("error").GetString(), StringComparison.Ordinal);

        using var load = await running.Http.PostAsync("/admin/models/huge/load", null);
        Assert.Equal(HttpStatusCode.Conflict, load.StatusCode);
        Assert.Contains("fits on no CPU slot", await load.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await running.Http.PostAsync("/admin/models/nobody/load", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await running.Http.PostAsync("/v1/chat/completions", Chat("tiny", 2))).StatusCode); // the rest serves on
    }

    [Fact]
    public async Task Unload_load_and_reload_change_what_serves_and_each_call_is_audited()
    {
        var folder = Model("tiny");
        await using var running = await Start($"--Models:tiny:Path={folder}");
        var http = running.Http;

        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/admin/models/tiny/unload", null)).StatusCode);
        using (var refused = await http.PostAsync("/v1/chat/completions", Chat("tiny", 2)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Contains("unloaded", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.Conflict, (await http.PostAsync("/admin/models/tiny/unload", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/admin/models/tiny/load", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/chat/completions", Chat("tiny", 2))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/admin/models/tiny/reload", null)).StatusCode);

        // A model file changed behind the manifest's back: the reload refuses it and says why, and the version that
        // was loaded keeps serving.
        await File.AppendAllTextAsync(Path.Combine(folder, "tokenizer.json"), " ");
        using (var tampered = await http.PostAsync("/admin/models/tiny/reload", null))
        {
            Assert.Equal(HttpStatusCode.UnprocessableEntity, tampered.StatusCode);
            var refusal = await tampered.Content.ReadAsStringAsync();
            Assert.Contains("tokenizer.json", refusal, StringComparison.Ordinal);
            Assert.Contains("keeps serving", refusal, StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/chat/completions", Chat("tiny", 2))).StatusCode);
        using (var pool = JsonDocument.Parse(await http.GetStringAsync("/admin/pool")))
        {
            var tiny = pool.RootElement.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("id").GetString() == "tiny");
            Assert.Equal("ready", tiny.GetProperty("state").GetString());
            Assert.Contains("tokenizer.json", tiny.GetProperty("error").GetString(), StringComparison.Ordinal);
        }

        // Each action is recorded before it acts (admin.action) and with its outcome when it ends (request.completed).
        using var actions = JsonDocument.Parse(await http.GetStringAsync("/audit/events?kind=admin.action&limit=100"));
        var intents = Details(actions);
        Assert.Equal(2, intents.Count(d => d == "unload model tiny"));
        Assert.Single(intents, d => d == "load model tiny");
        Assert.Equal(2, intents.Count(d => d == "reload model tiny"));
        using var completed = JsonDocument.Parse(await http.GetStringAsync("/audit/events?kind=request.completed&limit=100"));
        var outcomes = Details(completed);
        Assert.Contains(outcomes, d => d.StartsWith("unload model tiny: model 'tiny' is not loaded", StringComparison.Ordinal));
        Assert.Contains(outcomes, d => d.StartsWith("reload model tiny", StringComparison.Ordinal) && d.Contains("tokenizer.json", StringComparison.Ordinal));

        // Administering a model is no request of it: usage counts the two chat completions only.
        using var usage = JsonDocument.Parse(await http.GetStringAsync("/admin/usage?by=model"));
        Assert.Equal(2, usage.RootElement.GetProperty("data").EnumerateArray().Where(r => r.GetProperty("key").GetString() == "tiny").Sum(r => r.GetProperty("requests").GetInt64()));
    }

    [Fact]
    public async Task A_reload_under_load_fails_no_request()
    {
        await using var running = await Start($"--Models:tiny:Path={Model("tiny")}");
        var http = running.Http;

        // Requests keep arriving before, during and after the reload; every one is answered in full.
        using var stop = new CancellationTokenSource();
        var answered = 0;
        var callers = Enumerable.Range(0, 3).Select(async _ =>
        {
            var statuses = new List<HttpStatusCode>();
            while (!stop.IsCancellationRequested)
            {
                using var response = await http.PostAsync("/v1/chat/completions", Chat("tiny", 24, ignoreEos: true));
                statuses.Add(response.StatusCode);
                Interlocked.Increment(ref answered);
            }

            return statuses;
        }).ToList();
        // By answers, not by time: a loaded machine may answer none in a fixed pause.
        await WaitForAnswers(3);
        using (var reload = await http.PostAsync("/admin/models/tiny/reload", null))
        {
            Assert.Equal(HttpStatusCode.OK, reload.StatusCode);
        }

        await WaitForAnswers(Volatile.Read(ref answered) + 4); // at least one begun after the reload (3 may be in flight)
        await stop.CancelAsync();
        var all = (await Task.WhenAll(callers)).SelectMany(s => s).ToList();
        Assert.True(all.Count >= 6, $"only {all.Count} requests ran");
        Assert.All(all, status => Assert.Equal(HttpStatusCode.OK, status));
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/ready")).StatusCode);

        async Task WaitForAnswers(int count)
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (Volatile.Read(ref answered) < count && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }

            Assert.True(Volatile.Read(ref answered) >= count, $"only {Volatile.Read(ref answered)} of {count} answers within 30 s");
        }
    }

    [Fact]
    public async Task A_model_asked_to_run_on_a_gpu_of_a_node_without_one_is_refused_and_one_on_a_cpu_slot_serves()
    {
        var model = Model("tiny");
        await using var running = await Start($"--Models:gpu:Path={model}", "--Models:gpu:Device=gpu", $"--Models:cpu:Path={model}", "--Models:cpu:Device=cpu");
        var http = running.Http;

        using var load = await http.PostAsync("/admin/models/gpu/load", null);
        Assert.Equal(HttpStatusCode.Conflict, load.StatusCode);
        Assert.Contains("fits on no GPU: this node has no healthy GPU", await load.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/chat/completions", Chat("cpu", 2))).StatusCode);
    }

    [Fact]
    public async Task A_reload_without_room_for_both_versions_replaces_the_old_one()
    {
        // Both CPU slots are taken by the model's two replicas, so the new version cannot load beside the old one.
        await using var running = await Start($"--Models:tiny:Path={Model("tiny")}", "--Models:tiny:Replicas=2", $"--Models:tiny:MemoryBytes={SlotMemory * 3 / 4}");
        var http = running.Http;

        using var reload = await http.PostAsync("/admin/models/tiny/reload", null);

        Assert.Equal(HttpStatusCode.OK, reload.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/chat/completions", Chat("tiny", 2))).StatusCode);
    }

    [Fact]
    public async Task A_reload_that_would_not_fit_even_alone_keeps_the_old_version_serving()
    {
        // The new settings ask for more replicas than the node's two CPU slots hold: making room by unloading the old
        // version would only take the model down.
        var model = Model("tiny");
        var settings = _root.Combine("models.json");
        File.WriteAllText(settings, $$"""{ "Models": { "tiny": { "Path": "{{model}}", "Replicas": 2, "MemoryBytes": {{SlotMemory * 3 / 4}} } } }""");
        await using var running = await Start($"--APPLIANCE_SETTINGS={settings}");
        var http = running.Http;
        File.WriteAllText(settings, $$"""{ "Models": { "tiny": { "Path": "{{model}}", "Replicas": 3, "MemoryBytes": {{SlotMemory * 3 / 4}} } } }""");

        using var reload = await http.PostAsync("/admin/models/tiny/reload", null);

        var body = await reload.Content.ReadAsStringAsync();
        Assert.True(reload.StatusCode == HttpStatusCode.Conflict, body);
        Assert.Contains("keeps serving", body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/chat/completions", Chat("tiny", 2))).StatusCode);
    }

    [Fact]
    public async Task Unloading_one_model_keeps_the_node_serving_the_others()
    {
        var model = Model("tiny");
        await using var running = await Start($"--Models:tiny:Path={model}", $"--Models:second:Path={model}");
        var http = running.Http;

        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/admin/models/second/unload", null)).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/health/ready")).StatusCode); // HAProxy keeps the node
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/chat/completions", Chat("tiny", 2))).StatusCode);
        using var states = JsonDocument.Parse(await http.GetStringAsync("/health/models"));
        Assert.Equal("unloaded", states.RootElement.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("id").GetString() == "second").GetProperty("state").GetString());

        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/admin/models/tiny/unload", null)).StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync("/health/ready")).StatusCode); // nothing left to serve
    }

    [Fact]
    public async Task A_model_removed_from_the_settings_and_unloaded_is_no_longer_one_of_the_nodes_models()
    {
        // What the models role does with a model the inventory no longer names: the settings file first, then unload.
        var model = Model("tiny");
        var broken = Model("broken");
        File.AppendAllText(Path.Combine(broken, "genai_config.json"), " "); // fails verification: never loaded
        var settings = _root.Combine("models.json");
        File.WriteAllText(settings, $$"""{ "Models": { "tiny": { "Path": "{{model}}" }, "second": { "Path": "{{model}}" }, "broken": { "Path": "{{broken}}" } } }""");
        await using var running = await Start($"--APPLIANCE_SETTINGS={settings}");
        var http = running.Http;

        File.WriteAllText(settings, $$"""{ "Models": { "tiny": { "Path": "{{model}}" } } }""");
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/admin/models/second/unload", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/admin/models/broken/unload", null)).StatusCode); // failed, now not declared either

        using var states = JsonDocument.Parse(await http.GetStringAsync("/health/models"));
        Assert.Equal(["tiny"], states.RootElement.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("id").GetString()));
        using var ready = await http.GetAsync("/health/ready");
        var body = await ready.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.DoesNotContain("unloaded", body, StringComparison.Ordinal); // not degraded for ever after
        Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync("/v1/chat/completions", Chat("second", 2))).StatusCode);
    }

    [Fact]
    public async Task An_unload_whose_caller_gives_up_still_stops_the_model_after_the_grace_period()
    {
        var model = _root.Combine("long-context");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { ContextLength = 4096 }, model);
        await using var running = await Start($"--Models:tiny:Path={model}", "--Pool:UnloadGracePeriod=00:00:01", "--Limits:MaxTokens=4000");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Chat("tiny", 4000, ignoreEos: true, stream: true) };
        using var streaming = await running.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await streaming.Content.ReadAsStreamAsync());
        Assert.NotNull(await reader.ReadLineAsync()); // running

        // As an administrator's `curl -m` that times out while the stream holds the model: the caller leaves.
        using var givesUp = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var manager = running.App.Services.GetRequiredService<Appliance.Host.Models.ModelManager>();
        var result = await manager.UnloadAsync("tiny", givesUp.Token);

        Assert.Equal(Appliance.Api.Models.ModelActionOutcome.Done, result.Outcome);
        Assert.Contains("1 request(s) still running after the grace period were cancelled", result.Message, StringComparison.Ordinal);
        var rest = await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(10)); // the engine stopped: the stream ends
        Assert.DoesNotContain("\"finish_reason\":\"length\"", rest, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_model_whose_chat_template_is_refused_holds_no_replica_and_loads_once_corrected()
    {
        var model = Model("bad-template");
        var config = Path.Combine(model, "tokenizer_config.json");
        var original = File.ReadAllText(config);
        var broken = System.Text.Json.Nodes.JsonNode.Parse(original)!;
        broken["chat_template"] = "{% for message in messages %}{{ message.content }"; // never closed
        File.WriteAllText(config, broken.ToJsonString());
        Appliance.Runtime.Onnx.Models.ModelManifest.Create(model); // the folder stays verified: only the template is wrong
        await using var running = await Start(waitUntilReady: false, $"--Models:tiny:Path={model}");
        var http = running.Http;

        for (var attempt = 0; attempt < 2; attempt++)
        {
            using var load = await http.PostAsync("/admin/models/tiny/load", null);
            Assert.Equal(HttpStatusCode.UnprocessableEntity, load.StatusCode); // not 409 "already loaded" the second time
            using var pool = JsonDocument.Parse(await http.GetStringAsync("/admin/pool"));
            var entry = pool.RootElement.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("id").GetString() == "tiny");
            Assert.Equal("failed", entry.GetProperty("state").GetString());
            Assert.Empty(entry.GetProperty("replicas").EnumerateArray());
            Assert.All(pool.RootElement.GetProperty("devices").EnumerateArray(), d => Assert.Equal(0, d.GetProperty("memoryPlacedBytes").GetInt64()));
        }

        File.WriteAllText(config, original);
        Appliance.Runtime.Onnx.Models.ModelManifest.Create(model);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/admin/models/tiny/load", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/chat/completions", Chat("tiny", 2))).StatusCode);
    }

    [Fact]
    public async Task The_usage_report_has_tokens_per_model_and_replica_seconds()
    {
        await using var running = await Start($"--Models:tiny:Path={Model("tiny")}", "--Models:tiny:Replicas=2", "--Models:tiny:MemoryBytes=104857600");
        Assert.Equal(HttpStatusCode.OK, (await running.Http.PostAsync("/v1/chat/completions", Chat("tiny", 4, ignoreEos: true))).StatusCode);
        await Task.Delay(300);

        using var usage = JsonDocument.Parse(await running.Http.GetStringAsync("/admin/usage?by=model"));
        var row = usage.RootElement.GetProperty("data").EnumerateArray().Single(r => r.GetProperty("key").GetString() == "tiny");
        Assert.Equal(4, row.GetProperty("completionTokens").GetInt64());
        var replicaSeconds = usage.RootElement.GetProperty("replicaSeconds").GetProperty("tiny").GetDouble();
        Assert.True(replicaSeconds > 0.5, $"two replicas loaded for at least 0.3 s each, got {replicaSeconds}");
    }

    [Theory]
    [InlineData("flex", HttpStatusCode.OK)]
    [InlineData("default", HttpStatusCode.OK)]
    [InlineData("overnight", HttpStatusCode.BadRequest)]
    public async Task Service_tier_picks_the_priority_class_and_unknown_tiers_are_refused(string tier, HttpStatusCode expected)
    {
        await using var running = await Start($"--Models:tiny:Path={Model("tiny")}");
        using var content = new StringContent($$"""{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"service_tier":"{{tier}}"}""", Encoding.UTF8, "application/json");
        using var answer = await running.Http.PostAsync("/v1/chat/completions", content);

        Assert.Equal(expected, answer.StatusCode);
        if (expected == HttpStatusCode.BadRequest)
        {
            Assert.Contains("\"param\":\"service_tier\"", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
    }

    public void Dispose() => _root.Dispose();

    private static List<string> Details(JsonDocument events) =>
        [.. events.RootElement.GetProperty("data").EnumerateArray().Select(e => e.TryGetProperty("detail", out var d) ? d.GetString() ?? string.Empty : string.Empty)];

    private string Model(string name)
    {
        var folder = _root.Combine(name);
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, folder);
        return folder;
    }

    private static Task<RunningAppliance> Start(params string[] args) => Start(waitUntilReady: true, args);

    private static async Task<RunningAppliance> Start(bool waitUntilReady, params string[] args)
    {
        var running = await RunningAppliance.StartAsync([.. args, "--Pool:CpuSlots=2", "--Pool:ThreadsPerCpuSlot=1", $"--Pool:CpuSlotMemoryBytes={SlotMemory}",
            "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None"]);
        if (waitUntilReady)
        {
            await running.WaitUntilReadyAsync();
        }

        return running;
    }

    private static StringContent Chat(string model, int maxTokens, bool ignoreEos = false, bool stream = false) => new(
        $$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}],"max_tokens":{{maxTokens}},"ignore_eos":{{(ignoreEos ? "true" : "false")}},"stream":{{(stream ? "true" : "false")}}}""",
        Encoding.UTF8, "application/json");
}
