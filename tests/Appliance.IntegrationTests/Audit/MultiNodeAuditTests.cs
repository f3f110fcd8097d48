using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Audit;

/// <summary>Two appliance nodes sharing one real PostgreSQL audit database, one chain each.</summary>
public sealed class MultiNodeAuditTests : IDisposable
{
    private readonly TestCluster _cluster = new("multi-node-audit");

    [Fact]
    public async Task Whichever_node_answers_auditors_read_verify_count_and_export_every_nodes_chain()
    {
        var key = _cluster.CheckpointKey; // one key for the cluster, as Ansible would distribute it
        await using var node1 = await _cluster.StartNodeAsync("node-1", "--Models:tiny:RecordContent=true");
        await using var node2 = await _cluster.StartNodeAsync("node-2", "--Models:tiny:RecordContent=true");

        foreach (var node in new[] { node1, node2, node1 })
        {
            using var response = await node.Http.PostAsync("/v1/chat/completions", new StringContent(
                """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        foreach (var (node, name) in new[] { (node1, "node-1"), (node2, "node-2") })
        {
            // Both chains, both intact, whichever node is asked.
            using var verify = JsonDocument.Parse(await node.Http.GetStringAsync("/audit/verify"));
            Assert.True(verify.RootElement.GetProperty("ok").GetBoolean(), verify.RootElement.GetRawText());
            Assert.Equal(name, verify.RootElement.GetProperty("node").GetString());
            Assert.Equal(["node-1", "node-2"], verify.RootElement.GetProperty("chains").EnumerateArray().Select(c => c.GetProperty("node").GetString()));
            Assert.All(verify.RootElement.GetProperty("chains").EnumerateArray(), c => Assert.True(c.GetProperty("ok").GetBoolean()));

            // The chats of both nodes, and one node's alone with the filter.
            using var events = JsonDocument.Parse(await node.Http.GetStringAsync("/audit/events?kind=request.completed&model=tiny"));
            Assert.Equal(["node-1", "node-1", "node-2"], events.RootElement.GetProperty("data").EnumerateArray().Select(e => e.GetProperty("node").GetString()!).Order());
            using var onlyTwo = JsonDocument.Parse(await node.Http.GetStringAsync("/audit/events?kind=request.completed&model=tiny&node=node-2"));
            Assert.Single(onlyTwo.RootElement.GetProperty("data").EnumerateArray());

            // Usage through either node is the sum of both nodes' records.
            using var usage = JsonDocument.Parse(await node.Http.GetStringAsync("/audit/usage?by=model"));
            Assert.Equal(3, usage.RootElement.GetProperty("data").EnumerateArray().Sum(r => r.GetProperty("requests").GetInt64()));
            Assert.Equal(["node-1", "node-2"], usage.RootElement.GetProperty("nodes").EnumerateArray().Select(n => n.GetString()));
        }

        // Recorded content stays readable only where its keys are: on the node that sealed it.
        using (var onTwo = JsonDocument.Parse(await node1.Http.GetStringAsync("/audit/events?kind=request.completed&model=tiny&node=node-2")))
        {
            var seq = onTwo.RootElement.GetProperty("data")[0].GetProperty("seq").GetInt64();
            using var elsewhere = await node1.Http.GetAsync($"/audit/events/{seq}/content?node=node-2");
            Assert.Equal(HttpStatusCode.Conflict, elsewhere.StatusCode);
            Assert.Contains("read it on that node", await elsewhere.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            Assert.Equal(HttpStatusCode.OK, (await node2.Http.GetAsync($"/audit/events/{seq}/content?node=node-2")).StatusCode);
        }

        // Paging with the cursor walks both chains: every entry once, none skipped. (Up to a fixed time: each page read
        // is itself recorded, and a cursor follows new entries.)
        // Read 3 s past it, so that entries stamped before it are surely written (100 ms was a thin margin under load).
        var until = Uri.EscapeDataString(DateTimeOffset.UtcNow.AddSeconds(1).ToString("O", System.Globalization.CultureInfo.InvariantCulture));
        await Task.Delay(TimeSpan.FromSeconds(4));
        var all = JsonDocument.Parse(await node2.Http.GetStringAsync($"/audit/events?limit=1000&to={until}")).RootElement.GetProperty("data").GetArrayLength();
        var paged = new HashSet<(string, long)>();
        var next = (string?)null;
        do
        {
            using var page = JsonDocument.Parse(await node2.Http.GetStringAsync($"/audit/events?limit=2&to={until}" + (next is null ? string.Empty : "&after=" + Uri.EscapeDataString(next))));
            foreach (var entry in page.RootElement.GetProperty("data").EnumerateArray())
            {
                Assert.True(paged.Add((entry.GetProperty("node").GetString()!, entry.GetProperty("seq").GetInt64())));
            }

            next = page.RootElement.GetProperty("next").GetString();
        }
        while (next is not null && paged.Count < 1000);
        Assert.Equal(all, paged.Count);

        // A bare sequence number is ambiguous across chains; a typo in a node name is not an empty, verified chain.
        Assert.Equal(HttpStatusCode.BadRequest, (await node1.Http.GetAsync("/audit/events?after=3")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await node1.Http.GetAsync("/audit/events?after=bm90LWEtY3Vyc29y")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await node1.Http.GetAsync("/audit/events?after=%25%25")).StatusCode);
        using (var one = JsonDocument.Parse(await node1.Http.GetStringAsync("/audit/verify?node=node-2")))
        {
            // One chain in scope: its figures at the top too, as a single node answers.
            Assert.True(one.RootElement.GetProperty("entries").GetInt64() > 0, one.RootElement.GetRawText());
            Assert.Single(one.RootElement.GetProperty("chains").EnumerateArray());
        }

        Assert.Equal(HttpStatusCode.OK, (await node1.Http.GetAsync("/audit/events?after=3&node=node-2")).StatusCode);
        using (var unknown = await node1.Http.GetAsync("/audit/verify?node=node-3"))
        {
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
            Assert.Contains("node-1, node-2", await unknown.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // One export holds both chains; the offline verifier checks each, and one node's alone on request.
        var export = _cluster.Root.Combine("cluster.jsonl");
        await File.WriteAllBytesAsync(export, await node1.Http.GetByteArrayAsync("/audit/export"));
        var publicKey = Path.ChangeExtension(key, null) + ".pub.pem";
        var (fileExit, fileOutput) = await ApplianceCli.RunAsync("audit", "verify", "--file", export, "--public-key", publicKey);
        Assert.True(fileExit == 0, fileOutput);
        Assert.Contains("node node-1: OK:", fileOutput, StringComparison.Ordinal);
        Assert.Contains("node node-2: OK:", fileOutput, StringComparison.Ordinal);

        var (exitCode, output) = await ApplianceCli.RunAsync(
            "audit", "verify", "--postgres", _cluster.Database.ConnectionString, "--node", "node-2", "--public-key", publicKey);
        Assert.True(exitCode == 0, output);
        Assert.StartsWith("OK:", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_node_chain_deleted_from_the_database_is_found_by_the_other_node_s_signed_witness()
    {
        var publicKey = Path.ChangeExtension(_cluster.CheckpointKey, null) + ".pub.pem";
        var node1 = await _cluster.StartNodeAsync("node-1");
        var node2 = await _cluster.StartNodeAsync("node-2");
        foreach (var node in new[] { node1, node2 })
        {
            using var response = await node.Http.PostAsync("/v1/chat/completions", new StringContent(
                """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // Each stop signs a last checkpoint; node-2's, after node-1's, is preceded by its witness of it.
        await node1.DisposeAsync();
        await node2.DisposeAsync();
        var (intact, intactOutput) = await ApplianceCli.RunAsync("audit", "verify", "--postgres", _cluster.Database.ConnectionString, "--public-key", publicKey);
        Assert.True(intact == 0, intactOutput);

        await using (var connection = new Npgsql.NpgsqlConnection(_cluster.Database.ConnectionString))
        {
            await connection.OpenAsync();
            await using var delete = new Npgsql.NpgsqlCommand(
                "DELETE FROM audit_entries WHERE node = 'node-1'; DELETE FROM audit_checkpoints WHERE node = 'node-1'; DELETE FROM audit_retention WHERE node = 'node-1'", connection);
            Assert.True(await delete.ExecuteNonQueryAsync() > 0);
        }

        var (exit, output) = await ApplianceCli.RunAsync("audit", "verify", "--postgres", _cluster.Database.ConnectionString, "--public-key", publicKey);
        Assert.True(exit == 1, output);
        Assert.Contains("node node-1: BROKEN", output, StringComparison.Ordinal);
        Assert.Contains("the chain of node node-1 is gone from the store: node node-2's signed entry", output, StringComparison.Ordinal);
        Assert.Contains("node node-2: OK:", output, StringComparison.Ordinal);
    }

    public void Dispose() => _cluster.Dispose();
}
