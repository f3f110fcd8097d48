using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Appliance.Api.Batches;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;
using Microsoft.Extensions.DependencyInjection;
using static Appliance.IntegrationTests.BatchRequests;

namespace Appliance.IntegrationTests.Host;

/// <summary>
/// Batches on a single node of its own settings: kept in its data folder (SQLite) across a restart, stopped at the end
/// of their window, stopped with the API key they were created with, behind the same caller's interactive requests,
/// waiting for quotas; and with Batches:Enabled=false, not there.
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

    private static IEnumerable<object> Completions(int count, string prompt, int maxTokens) =>
        Enumerable.Range(0, count).Select(i => (object)new { model = "tiny", prompt = $"{prompt} {i}", max_tokens = maxTokens, ignore_eos = true });

    [Fact]
    public async Task A_batch_queued_before_a_restart_runs_after_it_until_its_window_ends()
    {
        string id;
        await using (var before = await StartAsync("--Batches:Run=false"))
        {
            id = await CreateAsync(before.Http, "/v1/completions", Completions(3000, "story", 200));

            // As though the batch had been created almost 24 hours ago: its window ends well into the run.
            var store = before.App.Services.GetRequiredService<IBatchStore>();
            var job = (await store.BatchAsync(id, default))!;
            Assert.True(await store.UpdateBatchAsync(job with { ExpiresAt = DateTimeOffset.UtcNow.AddSeconds(30) }, BatchStatus.Validating, default));
        }

        await using var after = await StartAsync("--Batches:PollInterval=00:00:00.200", "--Batches:Concurrency=2");
        var batch = await EndAsync(after.Http, id);

        Assert.Equal("expired", batch.GetProperty("status").GetString());
        Assert.NotEqual(JsonValueKind.Null, batch.GetProperty("in_progress_at").ValueKind);
        Assert.NotEqual(JsonValueKind.Null, batch.GetProperty("expired_at").ValueKind);
        var completed = Count(batch, "completed");
        Assert.InRange(completed, 1, 2999);
        Assert.Equal(completed, (await LinesAsync(after.Http, batch.GetProperty("output_file_id").GetString()!)).Count);
        var expired = await LinesAsync(after.Http, batch.GetProperty("error_file_id").GetString()!);
        Assert.Equal(3000 - completed, expired.Count);
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
        var id = await CreateAsync(withKey, "/v1/completions", Completions(200, "text", 100));
        await WaitAsync(node.Http, id, b => Count(b, "completed") > 0);

        (await node.Http.DeleteAsync($"/admin/api-keys/{issued.RootElement.GetProperty("apiKey").GetProperty("id").GetString()}")).EnsureSuccessStatusCode();
        var batch = await EndAsync(node.Http, id);

        Assert.Equal("failed", batch.GetProperty("status").GetString());
        Assert.Equal("credential_refused", batch.GetProperty("errors").GetProperty("data")[0].GetProperty("code").GetString());
        var answered = Count(batch, "completed");
        Assert.InRange(answered, 1, 199);
        Assert.Equal(0, Count(batch, "failed"));
        var notSent = await LinesAsync(node.Http, batch.GetProperty("error_file_id").GetString()!);
        Assert.Equal(200 - answered, notSent.Count);
        Assert.All(notSent, l => Assert.Equal("credential_refused", l.GetProperty("error").GetProperty("code").GetString()));
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
        var id = await CreateAsync(node.Http, "/v1/completions", Completions(8, "batch", 1200));
        // One of its requests answered: another runs, and three wait in the engine's queue.
        await WaitAsync(node.Http, id, b => Count(b, "completed") >= 1);

        // The same caller (the same tenant): fairness between tenants cannot be what lets it pass.
        using var interactive = await node.Http.PostAsJsonAsync("/v1/completions", new { model = "tiny", prompt = "now, please", max_tokens = 5 });
        interactive.EnsureSuccessStatusCode();
        using var state = JsonDocument.Parse(await node.Http.GetStringAsync($"/v1/batches/{id}"));

        // Admitted next, after at most the batch request that was running: not behind the three waiting.
        Assert.InRange(Count(state.RootElement, "completed"), 1, 3);
        await node.Http.PostAsync($"/v1/batches/{id}/cancel", null);
    }

    [Fact]
    public async Task A_quota_that_resets_within_the_window_is_waited_for_not_failed()
    {
        // One stream at a time for the user, four requests at once from the batch: three are refused at each round.
        await using var node = await StartAsync("--Quotas:User:ConcurrentStreams=1", "--Batches:PollInterval=00:00:00.200", "--Batches:Concurrency=4");
        var id = await CreateAsync(node.Http, "/v1/completions", Completions(6, "quota", 40));

        var batch = await EndAsync(node.Http, id);

        Assert.Equal("completed", batch.GetProperty("status").GetString());
        Assert.Equal((6, 0), (Count(batch, "completed"), Count(batch, "failed")));
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
        var first = await CreateAsync(alice, "/v1/completions", Completions(3, "alice", 60));
        await WaitAsync(alice, first, b => Count(b, "completed") == 1);
        var second = await CreateAsync(bob, "/v1/completions", Completions(2, "bob", 5));

        var bobs = await EndAsync(bob, second);
        Assert.Equal(("completed", 2), (bobs.GetProperty("status").GetString(), Count(bobs, "completed")));
        using var alices = JsonDocument.Parse(await alice.GetStringAsync($"/v1/batches/{first}"));
        Assert.Equal(("in_progress", 1), (alices.RootElement.GetProperty("status").GetString(), Count(alices.RootElement, "completed")));
        // Refused once, then let go until the quota resets: not asked again and again.
        using var refusals = JsonDocument.Parse(await node.Http.GetStringAsync("/audit/events?kind=request.refused&limit=1000"));
        Assert.Single(refusals.RootElement.GetProperty("data").EnumerateArray(), r => r.GetProperty("detail").GetString()!.StartsWith($"batch {first} ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task While_another_batch_waits_a_long_one_lets_go_after_its_time_slice()
    {
        await using var node = await StartAsync("--Batches:TimeSlice=00:00:01", "--Batches:PollInterval=00:00:00.200", "--Batches:MaxOpenPerOwner=1");
        using var alice = node.ClientWith(node.MintToken("alice", ["appliance-user"]));
        using var bob = node.ClientWith(node.MintToken("bob", ["appliance-user"]));
        var long_ = await CreateAsync(alice, "/v1/completions", Completions(400, "long", 300));
        await WaitAsync(alice, long_, b => Count(b, "completed") >= 1);
        // One open batch each: alice's second is refused until her first has ended.
        using var form = new MultipartFormDataContent { { new StringContent("batch"), "purpose" }, { new StringContent(JsonSerializer.Serialize(new { custom_id = "x", method = "POST", url = "/v1/completions", body = new { model = "tiny", prompt = "x" } })), "file", "x.jsonl" } };
        using var file = JsonDocument.Parse(await (await alice.PostAsync("/v1/files", form)).EnsureSuccessStatusCode().Content.ReadAsStringAsync());
        using var refused = await alice.PostAsJsonAsync("/v1/batches", new { input_file_id = file.RootElement.GetProperty("id").GetString(), endpoint = "/v1/completions", completion_window = "24h" });
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("too_many_open_batches", await refused.Content.ReadAsStringAsync());

        var short_ = await CreateAsync(bob, "/v1/completions", Completions(2, "short", 5));

        var bobs = await EndAsync(bob, short_);
        Assert.Equal("completed", bobs.GetProperty("status").GetString());
        using var alices = JsonDocument.Parse(await alice.GetStringAsync($"/v1/batches/{long_}"));
        Assert.Equal("in_progress", alices.RootElement.GetProperty("status").GetString()); // bob's ran first, not after 400 long answers
        await alice.PostAsync($"/v1/batches/{long_}/cancel", null);
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
