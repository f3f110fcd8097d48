using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Audit;

/// <summary>Two appliance nodes sharing one real PostgreSQL audit database, one chain each.</summary>
public sealed class MultiNodeAuditTests : IDisposable
{
    private readonly TempFolder _root = new("multi-node-audit");
    private readonly TestPostgres _database = new();

    [Fact]
    public async Task Two_nodes_record_into_one_database_and_each_chain_verifies_online_and_offline()
    {
        var model = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, model);
        var key = _root.Combine("checkpoint-key.pem"); // one key for the cluster, as Ansible would distribute it
        await using var node1 = await StartNode("node-1", model, key);
        await using var node2 = await StartNode("node-2", model, key);

        foreach (var node in new[] { node1, node2, node1 })
        {
            using var response = await node.Http.PostAsync("/v1/chat/completions", new StringContent(
                """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        foreach (var (node, name, chats) in new[] { (node1, "node-1", 2), (node2, "node-2", 1) })
        {
            using var verify = JsonDocument.Parse(await node.Http.GetStringAsync("/audit/verify"));
            Assert.True(verify.RootElement.GetProperty("ok").GetBoolean(), verify.RootElement.GetRawText());
            Assert.Equal(name, verify.RootElement.GetProperty("node").GetString());
            using var events = JsonDocument.Parse(await node.Http.GetStringAsync("/audit/events?kind=request.completed&model=tiny"));
            Assert.Equal(chats, events.RootElement.GetProperty("data").GetArrayLength());
        }

        var (exitCode, output) = await ApplianceCli.RunAsync(
            "audit", "verify", "--postgres", _database.ConnectionString, "--node", "node-2", "--public-key", Path.ChangeExtension(key, null) + ".pub.pem");
        Assert.True(exitCode == 0, output);
    }

    public void Dispose()
    {
        _database.Dispose();
        _root.Dispose();
    }

    private async Task<RunningAppliance> StartNode(string node, string model, string key)
    {
        var running = await RunningAppliance.StartAsync(
            $"--Models:tiny:Path={model}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None",
            "--Audit:Store=postgresql", $"--Audit:PostgresConnectionString={_database.ConnectionString}", $"--Audit:NodeId={node}",
            $"--Audit:CheckpointKeyPath={key}");
        await running.WaitUntilReadyAsync();
        return running;
    }
}
