using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Appliance.Api.Batches;
using Appliance.Host.Batches;
using Microsoft.Extensions.DependencyInjection;

namespace Appliance.IntegrationTests.Host;

/// <summary>
/// Batches in a cluster: the nodes share them through PostgreSQL, so a batch created through one node is followed and
/// read through any; a node that stopped in the middle of a batch leaves a lease that runs out, and another node goes
/// on with the requests left, without sending again those already answered.
/// </summary>
public sealed class BatchClusterTests : IDisposable
{
    private readonly TestCluster _cluster = new("batches");

    [Fact]
    public async Task Another_node_takes_over_a_batch_whose_node_stopped_and_sends_only_what_was_left()
    {
        // node-1 runs no batches: it creates the batch, and its store stands for the node that stopped.
        await using var first = await _cluster.StartNodeAsync("node-1", "--Batches:Run=false");
        var id = await BatchRequests.CreateAsync(first.Http, "/v1/chat/completions", Enumerable.Range(0, 4).Select(i =>
            (object)new { model = "tiny", messages = new[] { new { role = "user", content = $"question {i}" } }, max_tokens = 3, temperature = 0 }), prefix: "q");

        // As a node leaves a batch when it stops mid-way: running, its first request answered, its lease about to end.
        var store = first.App.Services.GetRequiredService<IBatchStore>();
        var now = DateTimeOffset.UtcNow;
        Assert.NotNull(await store.LeaseNextAsync("stopped-node", now, now + TimeSpan.FromSeconds(2), [], default));
        var job = (await store.BatchAsync(id, default))!;
        Assert.True(await store.UpdateBatchAsync(job with { Status = BatchStatus.InProgress, InProgressAt = now, Total = 4 }, BatchStatus.Validating, default));
        var answeredBefore = """{"id":"batch_req_before","custom_id":"q0","response":{"status_code":200,"request_id":"before-the-stop","body":{"answered":"by the node that stopped"}},"error":null}""";
        await store.AddResultAsync(id, 0, false, answeredBefore, "stopped-node", default);

        await using var second = await _cluster.StartNodeAsync("node-2", "--Batches:PollInterval=00:00:00.200");
        var batch = await BatchRequests.EndAsync(first.Http, id); // followed through the other node

        Assert.Equal("completed", batch.GetProperty("status").GetString());
        Assert.Equal(4, batch.GetProperty("request_counts").GetProperty("completed").GetInt32());
        var output = await BatchRequests.LinesAsync(first.Http, batch.GetProperty("output_file_id").GetString()!);
        Assert.Equal(["q0", "q1", "q2", "q3"], output.Select(o => o.GetProperty("custom_id").GetString()));
        Assert.Equal("before-the-stop", output[0].GetProperty("response").GetProperty("request_id").GetString());

        // Only the three requests left were sent, by node-2, each audited there as the batch's creator.
        using var records = JsonDocument.Parse(await second.Http.GetStringAsync("/audit/events?kind=request.completed&model=tiny&limit=100"));
        var sent = records.RootElement.GetProperty("data").EnumerateArray()
            .Where(r => r.GetProperty("detail").GetString()?.StartsWith($"batch {id} ", StringComparison.Ordinal) == true).ToList();
        Assert.Equal(3, sent.Count);
        Assert.All(sent, r => Assert.Equal(("node-2", "tester"), (r.GetProperty("node").GetString(), r.GetProperty("username").GetString())));
        Assert.DoesNotContain(sent, r => r.GetProperty("detail").GetString()!.Contains("line 1 (q0)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_node_that_stops_mid_batch_lets_it_go_at_once_and_another_node_finishes_it()
    {
        // A lease of ten minutes: were it not let go at the stop, the second node could not take the batch in time.
        string[] settings = ["--Batches:PollInterval=00:00:00.200", "--Batches:LeaseDuration=00:10:00", "--Batches:Concurrency=1"];
        string id;
        await using (var first = await _cluster.StartNodeAsync("node-1", settings))
        {
            id = await BatchRequests.CreateAsync(first.Http, "/v1/completions",
                Enumerable.Range(0, 30).Select(i => (object)new { model = "tiny", prompt = $"part {i}", max_tokens = 200, ignore_eos = true }));
            await BatchRequests.WaitAsync(first.Http, id, b => BatchRequests.Count(b, "completed") >= 2);
        }

        await using var second = await _cluster.StartNodeAsync("node-2", settings);
        var batch = await BatchRequests.EndAsync(second.Http, id);

        Assert.Equal(("completed", 30), (batch.GetProperty("status").GetString(), BatchRequests.Count(batch, "completed")));
        using var records = JsonDocument.Parse(await second.Http.GetStringAsync("/audit/events?kind=request.completed&model=tiny&limit=1000"));
        var byNode2 = records.RootElement.GetProperty("data").EnumerateArray()
            .Count(r => r.GetProperty("node").GetString() == "node-2" && r.GetProperty("detail").GetString()?.StartsWith($"batch {id} ", StringComparison.Ordinal) == true
                && r.GetProperty("finishReason").GetString() == "length");
        Assert.InRange(byNode2, 1, 28); // node-1 answered some before it stopped, node-2 the rest
    }

    public void Dispose() => _cluster.Dispose();
}
