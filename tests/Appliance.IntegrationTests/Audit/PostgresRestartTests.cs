using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Appliance.Tests.Common;
using Npgsql;

namespace Appliance.IntegrationTests.Audit;

/// <summary>
/// A PostgreSQL restart (or failover) ends every connection the nodes hold. Pooled connections, as deployed, must not
/// turn that into refused requests: the next requests are audited, keys issued and used, as before.
/// </summary>
public sealed class PostgresRestartTests : IDisposable
{
    private readonly TestCluster _cluster = new("pg-restart");

    [Fact]
    public async Task After_the_database_ended_every_connection_no_request_fails()
    {
        // Pooling on, as Ansible writes the connection string (the tests' default turns it off).
        var pooled = new NpgsqlConnectionStringBuilder(_cluster.Database.ConnectionString) { Pooling = true }.ToString();
        await using var node = await _cluster.StartNodeAsync("node-1", $"--Audit:PostgresConnectionString={pooled}",
            "--Identity:ApiKeys:Enabled=true", "--Identity:ApiKeys:ServiceOwners:0=svc-report");

        async Task<HttpStatusCode[]> Chats(HttpClient client) => await Task.WhenAll(Enumerable.Range(0, 6).Select(async _ =>
        {
            using var response = await client.PostAsync("/v1/chat/completions", new StringContent(
                """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""", Encoding.UTF8, "application/json"));
            return response.StatusCode;
        }));

        async Task<string> IssueKey()
        {
            using var issue = await node.Http.PostAsJsonAsync("/admin/api-keys", new { owner = "svc-report", name = "job", roles = new[] { "appliance-user" } });
            Assert.Equal(HttpStatusCode.Created, issue.StatusCode);
            using var issued = JsonDocument.Parse(await issue.Content.ReadAsStringAsync());
            return issued.RootElement.GetProperty("key").GetString()!;
        }

        // Requests side by side fill the pools with several connections.
        Assert.All(await Chats(node.Http), status => Assert.Equal(HttpStatusCode.OK, status));
        var key = await IssueKey();
        Assert.True(EndEveryConnection() >= 2);

        Assert.All(await Chats(node.Http), status => Assert.Equal(HttpStatusCode.OK, status));
        using (var withKey = node.ClientWith(await IssueKey()))
        {
            Assert.All(await Chats(withKey), status => Assert.Equal(HttpStatusCode.OK, status));
        }

        using (var withOldKey = node.ClientWith(key))
        {
            Assert.Equal(HttpStatusCode.OK, (await withOldKey.GetAsync("/v1/models")).StatusCode);
        }

        using var verify = JsonDocument.Parse(await node.Http.GetStringAsync("/audit/verify"));
        Assert.True(verify.RootElement.GetProperty("ok").GetBoolean(), verify.RootElement.GetRawText());
        using var completed = JsonDocument.Parse(await node.Http.GetStringAsync("/audit/events?kind=request.completed&model=tiny&limit=100"));
        Assert.Equal(18, completed.RootElement.GetProperty("data").GetArrayLength()); // every request audited
    }

    [Fact]
    public async Task A_node_takes_its_chain_s_lock_again_after_a_restart()
    {
        await using var node = await _cluster.StartNodeAsync("node-1", "--Audit:NodeLockCheckInterval=00:00:00.300");
        Assert.True(ChainLocked("node-1"));

        // The restart ended the session and its lock; the node takes it again, so a second process given the same
        // node id is still refused.
        EndEveryConnection();
        await WaitUntilAsync(() => ChainLocked("node-1"));
        var second = Assert.Throws<InvalidOperationException>(() => new Appliance.Audit.Stores.PostgresAuditStore(_cluster.Database.ConnectionString, lockNode: "node-1"));
        Assert.Contains("already writes the audit chain of node 'node-1'", second.Message, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(node.Http)).StatusCode);
    }

    [Fact]
    public async Task A_node_whose_chain_lock_another_process_took_records_nothing_and_reports_not_ready()
    {
        // Checks far apart: the node finds out at its next write, not from its timer.
        await using var node = await _cluster.StartNodeAsync("node-1", "--Audit:NodeLockCheckInterval=01:00:00");
        Assert.Equal(HttpStatusCode.OK, (await ChatAsync(node.Http)).StatusCode);

        // The database ends the node's sessions and another process (a second node given the same id) takes the lock.
        using var intruder = new NpgsqlConnection(_cluster.Database.ConnectionString);
        intruder.Open();
        using (var take = intruder.CreateCommand())
        {
            take.CommandText = """
                SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid();
                SELECT pg_try_advisory_lock(hashtext('appliance-audit-node:node-1'));
                """;
            using var reader = take.ExecuteReader();
            reader.NextResult();
            Assert.True(reader.Read() && reader.GetBoolean(0));
        }

        await Task.Delay(1200); // a write trusts the lock's session for a second after it last answered
        using var refused = await ChatAsync(node.Http);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Contains("audit_unavailable", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var ready = await node.Http.GetAsync("/health/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Contains("another process holds this node's audit chain", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private static Task<HttpResponseMessage> ChatAsync(HttpClient client) => client.PostAsync("/v1/chat/completions", new StringContent(
        """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""", Encoding.UTF8, "application/json"));

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition never came true within 30 s");
            await Task.Delay(100);
        }
    }

    private static Task WaitUntilAsync(Func<bool> condition) => WaitUntilAsync(() => Task.FromResult(condition()));

    /// <summary>Whether a session holds the advisory lock of a node's chain (a bigint key: classid the high half, objid the low).</summary>
    private bool ChainLocked(string node)
    {
        using var connection = new NpgsqlConnection(_cluster.Database.ConnectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND ((classid::bigint << 32) | objid::bigint) = hashtext('appliance-audit-node:' || @node)::bigint
            """;
        command.Parameters.AddWithValue("node", node);
        return (long)command.ExecuteScalar()! == 1;
    }

    /// <summary>Ends every session on the test's database, as a restart of the server ends them; returns how many.</summary>
    private long EndEveryConnection()
    {
        using var admin = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_cluster.Database.ConnectionString) { Database = "postgres" }.ToString());
        admin.Open();
        using var command = admin.CreateCommand();
        command.CommandText = "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE datname = @database";
        command.Parameters.AddWithValue("database", _cluster.Database.Database);
        return (long)command.ExecuteScalar()!;
    }

    public void Dispose() => _cluster.Dispose();
}
