using Appliance.Audit.Chain;
using Appliance.Audit.Stores;
using Appliance.Tests.Common;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Appliance.Audit.Tests;

/// <summary>The PostgreSQL store on a real server: several nodes, one chain each, in one database.</summary>
public sealed class PostgresAuditStoreTests : IDisposable
{
    private readonly TestPostgres _database = new();
    private readonly TempFolder _folder = new("audit-postgres");

    [Fact]
    public async Task A_retired_nodes_chain_is_retained_by_a_live_node_but_never_one_another_process_writes()
    {
        using var signer = CheckpointSigner.LoadOrCreate(_folder.Combine("key.pem"));
        var old = DateTimeOffset.UtcNow.AddDays(-200);
        using (var retired = new PostgresAuditStore(_database.ConnectionString, lockNode: "node-b"))
        await using (var log = new AuditLog(retired, signer, "node-b", TimeProvider.System, new AuditLogOptions { CheckpointEvery = 5, MaxBatch = 1 }, NullLogger<AuditLog>.Instance))
        {
            foreach (var i in Enumerable.Range(1, 12))
            {
                await log.RecordAsync(AuditChainFixture.Record(i) with { Time = old.AddMinutes(i) });
            }
        }

        using var live = new PostgresAuditStore(_database.ConnectionString, lockNode: "node-a");
        var cutoff = DateTimeOffset.UtcNow.AddDays(-90);
        using (var restarted = new PostgresAuditStore(_database.ConnectionString, lockNode: "node-b"))
        {
            // node-b runs again (its id given back to a node): its lock is held, so its own retention applies, not ours.
            Assert.Null(live.TryClaimIdleChain("node-b"));
            Assert.Empty(AuditRetention.IdleChainSteps(live, signer, "node-a", cutoff, DateTimeOffset.UtcNow));
            Assert.Equal(12, live.Chain("node-b").Count());
        }

        var (chain, record) = Assert.Single(AuditRetention.IdleChainSteps(live, signer, "node-a", cutoff, DateTimeOffset.UtcNow));
        Assert.Equal(("node-b", 12L), (chain, record.ThroughSequence));
        Assert.Empty(live.Chain("node-b"));
        using var again = new PostgresAuditStore(_database.ConnectionString, lockNode: "node-b"); // the claim was let go
    }

    [Fact]
    public async Task A_node_that_starts_during_a_retention_step_on_its_chain_waits_for_it_rather_than_giving_up()
    {
        using var live = new PostgresAuditStore(_database.ConnectionString, lockNode: "node-a");
        var claim = live.TryClaimIdleChain("node-c");
        Assert.NotNull(claim);
        var start = Task.Run(() => new PostgresAuditStore(_database.ConnectionString, lockNode: "node-c"));
        await Task.Delay(TimeSpan.FromSeconds(11)); // past the 10 s a node waits for another process's session to end
        Assert.False(start.IsCompleted, start.Exception?.ToString());

        claim.Dispose();
        using var started = await start.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Null(started.WritesRefused);
        Assert.Null(live.TryClaimIdleChain("node-c")); // its writer holds it now
    }

    [Fact]
    public async Task Two_nodes_append_concurrently_to_one_database_and_each_chain_verifies()
    {
        using var signer = CheckpointSigner.LoadOrCreate(_folder.Combine("key.pem"));
        using var storeA = new PostgresAuditStore(_database.ConnectionString, lockNode: "node-a");
        using var storeB = new PostgresAuditStore(_database.ConnectionString, lockNode: "node-b");
        await using (var logA = new AuditLog(storeA, signer, "node-a", TimeProvider.System, new AuditLogOptions { CheckpointEvery = 20 }, NullLogger<AuditLog>.Instance))
        await using (var logB = new AuditLog(storeB, signer, "node-b", TimeProvider.System, new AuditLogOptions { CheckpointEvery = 20 }, NullLogger<AuditLog>.Instance))
        {
            await Task.WhenAll(Enumerable.Range(1, 120).Select(i => (i % 2 == 0 ? logA : logB).RecordAsync(
                i % 5 == 0 ? AuditChainFixture.Record(i) with { Kind = AuditKinds.Completed } : AuditChainFixture.Record(i))));
        }

        Assert.Equal(["node-a", "node-b"], storeA.Nodes());
        using var key = PublicKey(signer);
        var verdicts = new List<(string, ChainVerification)>();
        foreach (var node in new[] { "node-a", "node-b" })
        {
            var verdict = ChainVerifier.Verify(storeA.Chain(node), storeA.Checkpoints(node), key);
            Assert.True(verdict.Ok, verdict.Message);
            // The records, and the witness entries of the other chain's checkpoints that came between (ChainWitness).
            var witnesses = storeA.Chain(node).Count(e => e.Record.Kind == AuditKinds.Witness);
            Assert.Equal(60 + witnesses, verdict.EntriesChecked);
            verdicts.Add((node, verdict));
        }

        Assert.All(ChainWitness.Check(storeA, verdicts), v => Assert.True(v.Verdict.Ok, v.Verdict.Message));
        Assert.Equal(60, storeB.Query("node-a", new AuditQuery { Limit = 1000 }).Count(e => e.Record.Kind != AuditKinds.Witness)); // every node reads every chain
        var usage = Assert.Single(storeA.Usage("node-a", DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), "user"));
        Assert.Equal(("user0", 12L), (usage.Key, usage.Requests)); // node a's completed records: every tenth
        Assert.Equal(Enumerable.Range(1, 12).Sum(k => 20L * k), usage.CompletionTokens);

        // A writing node builds the indexes of witness entries and of a caller's usage in the background (concurrently,
        // once, valid).
        await using var connection = new Npgsql.NpgsqlConnection(_database.ConnectionString);
        await connection.OpenAsync();
        await using var valid = new Npgsql.NpgsqlCommand(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname IN ('audit_entries_witness', 'audit_entries_user_time') AND i.indisvalid", connection);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Convert.ToInt64(await valid.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture) != 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "no valid witness and user-time indexes after 30 s");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task A_node_starting_while_the_audit_table_is_locked_for_an_index_build_does_not_wait()
    {
        using (new PostgresAuditStore(_database.ConnectionString))
        {
            // creates the schema
        }

        // What a concurrent index build holds on the table for as long as it runs: a start that ran
        // `CREATE INDEX IF NOT EXISTS` waited on it, and the build waited on that start's transaction (a deadlock).
        await using var builder = new NpgsqlConnection(_database.ConnectionString);
        await builder.OpenAsync();
        await using var transaction = await builder.BeginTransactionAsync();
        await using (var hold = new NpgsqlCommand("LOCK TABLE audit_entries IN SHARE UPDATE EXCLUSIVE MODE", builder, transaction))
        {
            await hold.ExecuteNonQueryAsync();
        }

        var start = Task.Run(() => new PostgresAuditStore(_database.ConnectionString, lockNode: "node-b"));
        using var store = await start.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Null(store.WritesRefused); // it started holding its chain's lock
        Assert.Null(store.Head("node-b"));
        await transaction.RollbackAsync();
    }

    [Fact]
    public void A_second_process_with_the_same_node_id_is_refused()
    {
        using var first = new PostgresAuditStore(_database.ConnectionString, lockNode: "node-a");
        var error = Assert.Throws<InvalidOperationException>(() => new PostgresAuditStore(_database.ConnectionString, lockNode: "node-a"));
        Assert.Contains("node-a", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_row_modified_in_the_database_is_found()
    {
        using var signer = CheckpointSigner.LoadOrCreate(_folder.Combine("key.pem"));
        using var store = new PostgresAuditStore(_database.ConnectionString, lockNode: "node-a");
        await using (var log = new AuditLog(store, signer, "node-a", TimeProvider.System, new AuditLogOptions(), NullLogger<AuditLog>.Instance))
        {
            foreach (var i in Enumerable.Range(1, 10))
            {
                await log.RecordAsync(AuditChainFixture.Record(i));
            }
        }

        using (var connection = new NpgsqlConnection(_database.ConnectionString))
        {
            connection.Open();
            using var update = connection.CreateCommand();
            update.CommandText = "UPDATE audit_entries SET username = 'nobody' WHERE seq = 4";
            Assert.Equal(1, update.ExecuteNonQuery());
        }

        using var key = PublicKey(signer);
        var verdict = ChainVerifier.Verify(store.Chain("node-a"), store.Checkpoints("node-a"), key);
        Assert.Equal((ChainProblem.Modified, 4L), (verdict.Problem, verdict.FirstBrokenSequence ?? 0));
    }

    [Fact]
    public async Task A_database_that_stops_answering_fails_the_batch_within_the_write_timeout_and_the_log_records_again_after()
    {
        using var signer = CheckpointSigner.LoadOrCreate(_folder.Combine("key.pem"));
        // Without a node lock, so no concurrent index build runs that the table lock below could deadlock with.
        // 3 s: the inserts meant to succeed must not time out on a loaded machine; far below Npgsql's 30 s default.
        using var store = new PostgresAuditStore(_database.ConnectionString, writeTimeout: TimeSpan.FromSeconds(3));
        await using var log = new AuditLog(store, signer, "node-a", TimeProvider.System, new AuditLogOptions(), NullLogger<AuditLog>.Instance);
        await log.RecordAsync(AuditChainFixture.Record(1));

        // Another session holds the audit table (a migration, a VACUUM FULL, a stuck transaction): inserts wait on it.
        using (var blocker = new NpgsqlConnection(_database.ConnectionString))
        {
            blocker.Open();
            using var transaction = blocker.BeginTransaction();
            using (var lockTable = blocker.CreateCommand())
            {
                lockTable.CommandText = "LOCK TABLE audit_entries IN ACCESS EXCLUSIVE MODE";
                lockTable.ExecuteNonQuery();
            }

            // Npgsql's default would hold it for 30 s; the bound here is below that and above the two statements of 3 s that wait.
            await Assert.ThrowsAsync<AuditUnavailableException>(() => log.RecordAsync(AuditChainFixture.Record(2)).WaitAsync(TimeSpan.FromSeconds(20)));
            Assert.NotNull(log.Failing);
        }

        var entry = await log.RecordAsync(AuditChainFixture.Record(3));
        Assert.Equal(2, entry.Sequence); // the failed batch left the chain head where it was
        Assert.Null(log.Failing);
    }

    [Theory]
    [InlineData("Host=db;Username=appliance", 5)]
    [InlineData("Host=db;Username=appliance;Timeout=20", 20)]
    [InlineData("Host=db;Username=appliance;timeout=0", 0)]
    public void A_connection_string_without_a_connect_timeout_gets_five_seconds(string given, int expected) =>
        Assert.Equal(expected, new NpgsqlConnectionStringBuilder(Postgres.ConnectionDefaults.Apply(given)).Timeout);

    public void Dispose()
    {
        _database.Dispose();
        _folder.Dispose();
    }

    private static System.Security.Cryptography.ECDsa PublicKey(CheckpointSigner signer)
    {
        var key = System.Security.Cryptography.ECDsa.Create();
        key.ImportFromPem(signer.PublicKeyPem());
        return key;
    }
}
