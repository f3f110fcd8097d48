using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Appliance.Api.Batches;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;
using Microsoft.Extensions.DependencyInjection;

namespace Appliance.IntegrationTests.Host;

/// <summary>
/// Batches on a single node of its own settings: kept in its data folder (SQLite) across a restart, stopped at the end
/// of their window, stopped with the API key they were created with, behind the same caller's interactive requests;
/// and with Batches:Enabled=false, not there.
/// </summary>
public sealed class BatchNodeTests : IDisposable
{
    private readonly TempFolder _root = new("batch-node");

    private async Task<RunningAppliance> StartAsync(params string[] settings)
    {
        var model = _root.Combine("tiny");
        if (!Directory.Exists(model))
        {
            SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { ContextLength = 2048 }, model);
        }

        var node = await RunningAppliance.StartAsync([$"--Appliance:DataFolder={_root.Combine("data")}", $"--Models:tiny:Path={model}",
            "--Models:tiny:IntraOpThreads=2", "--Logging:LogLevel:Default=Warning", .. settings]);
        await node.WaitUntilReadyAsync();
        return node;
    }

    [Fact]
    public async Task A_batch_queued_before_a_restart_runs_after_it_until_its_window_ends()
    {
        string id;
        await using (var before = await StartAsync("--Batches:PollInterval=01:00:00", "--Batches:LeaseDuration=03:00:00"))
        {
            var input = string.Join("\n", Enumerable.Range(0, 400).Select(i => JsonSerializer.Serialize(new
            {
                custom_id = $"s{i}",
                method = "POST",
                url = "/v1/completions",
                body = new { model = "tiny", prompt = $"story {i}", max_tokens = 200, ignore_eos = true },
            })));
            using var form = new MultipartFormDataContent { { new StringContent("batch"), "purpose" }, { new ByteArrayContent(Encoding.UTF8.GetBytes(input)), "file", "s.jsonl" } };
            using var uploaded = JsonDocument.Parse(await (await before.Http.PostAsync("/v1/files", form)).EnsureSuccessStatusCode().Content.ReadAsStringAsync());
            using var created = JsonDocument.Parse(await (await before.Http.PostAsJsonAsync("/v1/batches", new
            {
                input_file_id = uploaded.RootElement.GetProperty("id").GetString(),
                endpoint = "/v1/completions",
                completion_window = "24h",
            })).EnsureSuccessStatusCode().Content.ReadAsStringAsync());
            id = created.RootElement.GetProperty("id").GetString()!;
            Assert.Equal("validating", created.RootElement.GetProperty("status").GetString());

            // As though the batch had been created almost 24 hours ago: its window ends a few seconds into the run.
            var store = before.App.Services.GetRequiredService<IBatchStore>();
            var job = (await store.BatchAsync(id, default))!;
            Assert.True(await store.UpdateBatchAsync(job with { ExpiresAt = DateTimeOffset.UtcNow.AddSeconds(8) }, BatchStatus.Validating, default));
        }

        await using var after = await StartAsync("--Batches:PollInterval=00:00:00.200", "--Batches:Concurrency=2");
        JsonElement batch;
        for (var attempt = 0; ; attempt++)
        {
            using var state = JsonDocument.Parse(await after.Http.GetStringAsync($"/v1/batches/{id}"));
            batch = state.RootElement.Clone();
            if (BatchStatus.IsFinal(batch.GetProperty("status").GetString()!))
            {
                break;
            }

            Assert.True(attempt < 600, $"batch {id} still {batch.GetProperty("status").GetString()}");
            await Task.Delay(100);
        }

        Assert.Equal("expired", batch.GetProperty("status").GetString());
        Assert.NotEqual(JsonValueKind.Null, batch.GetProperty("in_progress_at").ValueKind);
        Assert.NotEqual(JsonValueKind.Null, batch.GetProperty("expired_at").ValueKind);
        var completed = batch.GetProperty("request_counts").GetProperty("completed").GetInt32();
        Assert.InRange(completed, 1, 399);
        var output = (await after.Http.GetStringAsync($"/v1/files/{batch.GetProperty("output_file_id").GetString()}/content")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(completed, output.Length);
        var expired = (await after.Http.GetStringAsync($"/v1/files/{batch.GetProperty("error_file_id").GetString()}/content")).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        Assert.Equal(400 - completed, expired.Count);
        Assert.All(expired, l => Assert.Equal("batch_expired", l.GetProperty("error").GetProperty("code").GetString()));
    }

    [Fact]
    public async Task A_batch_created_with_an_api_key_stops_with_the_key_and_says_why()
    {
        // One failed sign-in a minute per address: a batch's refusal counted as one would throttle the creator's address.
        await using var node = await StartAsync("--Identity:ApiKeys:Enabled=true", "--Batches:PollInterval=00:00:00.200", "--Batches:Concurrency=1",
            "--Identity:UnauthenticatedPerMinute=1");
        using var issued = JsonDocument.Parse(await (await node.Http.PostAsJsonAsync("/admin/api-keys", new { owner = "tester", name = "nightly", roles = new[] { "appliance-user" } }))
            .EnsureSuccessStatusCode().Content.ReadAsStringAsync());
        using var withKey = node.ClientWith(issued.RootElement.GetProperty("key").GetString());
        var input = string.Join("\n", Enumerable.Range(0, 200).Select(i => JsonSerializer.Serialize(new
        {
            custom_id = $"k{i}",
            method = "POST",
            url = "/v1/completions",
            body = new { model = "tiny", prompt = $"text {i}", max_tokens = 100, ignore_eos = true },
        })));
        using var form = new MultipartFormDataContent { { new StringContent("batch"), "purpose" }, { new ByteArrayContent(Encoding.UTF8.GetBytes(input)), "file", "k.jsonl" } };
        using var uploaded = JsonDocument.Parse(await (await withKey.PostAsync("/v1/files", form)).EnsureSuccessStatusCode().Content.ReadAsStringAsync());
        using var created = JsonDocument.Parse(await (await withKey.PostAsJsonAsync("/v1/batches", new
        {
            input_file_id = uploaded.RootElement.GetProperty("id").GetString(),
            endpoint = "/v1/completions",
            completion_window = "24h",
        })).EnsureSuccessStatusCode().Content.ReadAsStringAsync());
        var id = created.RootElement.GetProperty("id").GetString()!;
        await WaitAsync(node, id, b => b.GetProperty("request_counts").GetProperty("completed").GetInt32() > 0);

        (await node.Http.DeleteAsync($"/admin/api-keys/{issued.RootElement.GetProperty("apiKey").GetProperty("id").GetString()}")).EnsureSuccessStatusCode();
        var batch = await WaitAsync(node, id, b => BatchStatus.IsFinal(b.GetProperty("status").GetString()!));

        Assert.Equal("failed", batch.GetProperty("status").GetString());
        Assert.Equal("credential_refused", batch.GetProperty("errors").GetProperty("data")[0].GetProperty("code").GetString());
        var answered = batch.GetProperty("request_counts").GetProperty("completed").GetInt32();
        Assert.InRange(answered, 1, 199);
        Assert.Equal(0, batch.GetProperty("request_counts").GetProperty("failed").GetInt32());
        var notSent = (await node.Http.GetStringAsync($"/v1/files/{batch.GetProperty("error_file_id").GetString()}/content")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(200 - answered, notSent.Length);
        Assert.All(notSent, l => Assert.Contains("\"credential_refused\"", l));
        // The refusal is no failed sign-in from the creator's address: a bad token from there is still told 401, not 429.
        using var badToken = node.ClientWith("not-a-token");
        using var refused = await badToken.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
    }

    [Fact]
    public async Task A_batchs_requests_wait_behind_their_creators_interactive_requests()
    {
        // One sequence at a time: whatever is admitted next shows which class goes first.
        await using var node = await StartAsync("--Models:tiny:MaxBatchSize=1", "--Batches:PollInterval=00:00:00.200", "--Batches:Concurrency=4");
        var input = string.Join("\n", Enumerable.Range(0, 8).Select(i => JsonSerializer.Serialize(new
        {
            custom_id = $"b{i}",
            method = "POST",
            url = "/v1/completions",
            body = new { model = "tiny", prompt = $"batch {i}", max_tokens = 1200, ignore_eos = true },
        })));
        using var form = new MultipartFormDataContent { { new StringContent("batch"), "purpose" }, { new ByteArrayContent(Encoding.UTF8.GetBytes(input)), "file", "b.jsonl" } };
        using var uploaded = JsonDocument.Parse(await (await node.Http.PostAsync("/v1/files", form)).EnsureSuccessStatusCode().Content.ReadAsStringAsync());
        using var created = JsonDocument.Parse(await (await node.Http.PostAsJsonAsync("/v1/batches", new
        {
            input_file_id = uploaded.RootElement.GetProperty("id").GetString(),
            endpoint = "/v1/completions",
            completion_window = "24h",
        })).EnsureSuccessStatusCode().Content.ReadAsStringAsync());
        var id = created.RootElement.GetProperty("id").GetString()!;
        // One of its requests answered: another runs, and three wait in the engine's queue.
        await WaitAsync(node, id, b => b.GetProperty("request_counts").GetProperty("completed").GetInt32() >= 1);

        // The same caller (the same tenant): fairness between tenants cannot be what lets it pass.
        using var interactive = await node.Http.PostAsJsonAsync("/v1/completions", new { model = "tiny", prompt = "now, please", max_tokens = 5 });
        interactive.EnsureSuccessStatusCode();
        using var state = JsonDocument.Parse(await node.Http.GetStringAsync($"/v1/batches/{id}"));

        // Admitted next, after at most the batch request that was running: not behind the three waiting.
        Assert.InRange(state.RootElement.GetProperty("request_counts").GetProperty("completed").GetInt32(), 1, 3);
        await node.Http.PostAsync($"/v1/batches/{id}/cancel", null);
    }

    [Fact]
    public async Task A_quota_that_resets_within_the_window_is_waited_for_not_failed()
    {
        // One stream at a time for the user, four requests at once from the batch: three are refused at each round.
        await using var node = await StartAsync("--Quotas:User:ConcurrentStreams=1", "--Batches:PollInterval=00:00:00.200", "--Batches:Concurrency=4");
        var input = string.Join("\n", Enumerable.Range(0, 6).Select(i => JsonSerializer.Serialize(new
        {
            custom_id = $"q{i}",
            method = "POST",
            url = "/v1/completions",
            body = new { model = "tiny", prompt = $"quota {i}", max_tokens = 40, ignore_eos = true },
        })));
        using var form = new MultipartFormDataContent { { new StringContent("batch"), "purpose" }, { new ByteArrayContent(Encoding.UTF8.GetBytes(input)), "file", "q.jsonl" } };
        using var uploaded = JsonDocument.Parse(await (await node.Http.PostAsync("/v1/files", form)).EnsureSuccessStatusCode().Content.ReadAsStringAsync());
        using var created = JsonDocument.Parse(await (await node.Http.PostAsJsonAsync("/v1/batches", new
        {
            input_file_id = uploaded.RootElement.GetProperty("id").GetString(),
            endpoint = "/v1/completions",
            completion_window = "24h",
        })).EnsureSuccessStatusCode().Content.ReadAsStringAsync());
        var id = created.RootElement.GetProperty("id").GetString()!;

        var batch = await WaitAsync(node, id, b => BatchStatus.IsFinal(b.GetProperty("status").GetString()!));

        Assert.Equal("completed", batch.GetProperty("status").GetString());
        Assert.Equal((6, 0), (batch.GetProperty("request_counts").GetProperty("completed").GetInt32(), batch.GetProperty("request_counts").GetProperty("failed").GetInt32()));
        using var refusals = JsonDocument.Parse(await node.Http.GetStringAsync("/audit/events?kind=request.refused&limit=1000"));
        Assert.Contains(refusals.RootElement.GetProperty("data").EnumerateArray(), r =>
            r.GetProperty("detail").GetString()!.StartsWith($"batch {id} ", StringComparison.Ordinal) && r.GetProperty("detail").GetString()!.Contains("concurrent_streams", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_batch_waiting_for_a_daily_quota_lets_other_batches_run_meanwhile()
    {
        // Not in the last minutes of a UTC day: there the quota's reset would be near enough to be waited for in place.
        var untilMidnight = DateTimeOffset.UtcNow.UtcDateTime.Date.AddDays(1) - DateTimeOffset.UtcNow.UtcDateTime;
        if (untilMidnight < TimeSpan.FromMinutes(3))
        {
            await Task.Delay(untilMidnight + TimeSpan.FromSeconds(5));
        }

        await using var node = await StartAsync("--Quotas:Users:alice:TokensPerDay=50", "--Batches:PollInterval=00:00:00.200", "--Batches:Concurrency=1");
        using var alice = node.ClientWith(node.MintToken("alice", ["appliance-user"]));
        using var bob = node.ClientWith(node.MintToken("bob", ["appliance-user"]));
        // Each of alice's requests takes more than her day's 50 tokens: the second is refused until midnight (UTC).
        var first = await CreateAsync(alice, Enumerable.Range(0, 3).Select(i => new { model = "tiny", prompt = $"alice {i}", max_tokens = 60, ignore_eos = true }));
        await WaitAsync(node, first, b => b.GetProperty("request_counts").GetProperty("completed").GetInt32() == 1, alice);
        var second = await CreateAsync(bob, Enumerable.Range(0, 2).Select(i => new { model = "tiny", prompt = $"bob {i}", max_tokens = 5 }));

        var bobs = await WaitAsync(node, second, b => BatchStatus.IsFinal(b.GetProperty("status").GetString()!), bob);
        Assert.Equal(("completed", 2), (bobs.GetProperty("status").GetString(), bobs.GetProperty("request_counts").GetProperty("completed").GetInt32()));
        using var alices = JsonDocument.Parse(await alice.GetStringAsync($"/v1/batches/{first}"));
        Assert.Equal(("in_progress", 1), (alices.RootElement.GetProperty("status").GetString(), alices.RootElement.GetProperty("request_counts").GetProperty("completed").GetInt32()));
        // Refused once, then let go until the quota resets: not asked again and again.
        using var refusals = JsonDocument.Parse(await node.Http.GetStringAsync("/audit/events?kind=request.refused&limit=1000"));
        Assert.Single(refusals.RootElement.GetProperty("data").EnumerateArray(), r => r.GetProperty("detail").GetString()!.StartsWith($"batch {first} ", StringComparison.Ordinal));
    }

    private static async Task<string> CreateAsync(HttpClient client, IEnumerable<object> bodies)
    {
        var input = string.Join("\n", bodies.Select((body, i) => JsonSerializer.Serialize(new { custom_id = $"r{i}", method = "POST", url = "/v1/completions", body })));
        using var form = new MultipartFormDataContent { { new StringContent("batch"), "purpose" }, { new ByteArrayContent(Encoding.UTF8.GetBytes(input)), "file", "r.jsonl" } };
        using var uploaded = JsonDocument.Parse(await (await client.PostAsync("/v1/files", form)).EnsureSuccessStatusCode().Content.ReadAsStringAsync());
        using var created = JsonDocument.Parse(await (await client.PostAsJsonAsync("/v1/batches", new
        {
            input_file_id = uploaded.RootElement.GetProperty("id").GetString(),
            endpoint = "/v1/completions",
            completion_window = "24h",
        })).EnsureSuccessStatusCode().Content.ReadAsStringAsync());
        return created.RootElement.GetProperty("id").GetString()!;
    }

    private static async Task<JsonElement> WaitAsync(RunningAppliance node, string id, Func<JsonElement, bool> until, HttpClient? owner = null)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var state = JsonDocument.Parse(await (owner ?? node.Http).GetStringAsync($"/v1/batches/{id}"));
            if (until(state.RootElement))
            {
                return state.RootElement.Clone();
            }

            Assert.True(attempt < 600, $"batch {id}: {state.RootElement.GetRawText()}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Turned_off_the_Batch_API_is_not_there()
    {
        await using var node = await StartAsync("--Batches:Enabled=false");

        using var files = await node.Http.GetAsync("/v1/files");
        using var batches = await node.Http.PostAsJsonAsync("/v1/batches", new { input_file_id = "file-x", endpoint = "/v1/chat/completions", completion_window = "24h" });

        Assert.Equal((HttpStatusCode.NotFound, HttpStatusCode.NotFound), (files.StatusCode, batches.StatusCode));
        Assert.Contains("Batches:Enabled", await files.Content.ReadAsStringAsync());
        Assert.False(File.Exists(Path.Combine(_root.Combine("data"), "batches", "batches.db")));
    }

    public void Dispose() => _root.Dispose();
}
