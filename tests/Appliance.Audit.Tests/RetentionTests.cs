using Appliance.Audit.Chain;
using Microsoft.Data.Sqlite;

namespace Appliance.Audit.Tests;

/// <summary>Retention removes whole sealed segments and leaves a signed record; the rest still verifies, and cheating is found.</summary>
public sealed class RetentionTests
{
    [Fact]
    public async Task Sealed_segments_older_than_the_cutoff_go_and_the_remaining_chain_verifies_from_the_signed_record()
    {
        await using var audit = await Filled(out var middle);
        var record = AuditRetention.Apply(audit.Store, audit.Signer, "node-1", middle, DateTimeOffset.UtcNow);

        Assert.NotNull(record);
        Assert.Equal(20, record.ThroughSequence); // the newest checkpoint (every 10) whose entry is older than the cutoff
        Assert.Equal(20, record.RemovedEntries);
        Assert.Equal(21, audit.Store.Chain("node-1").First().Sequence);
        var verdict = audit.Verify();
        Assert.True(verdict.Ok, verdict.Message);
        Assert.Equal(20, verdict.EntriesChecked);
        Assert.Contains("entries 1 to 20 removed by retention", verdict.Message, StringComparison.Ordinal);

        Assert.Null(AuditRetention.Apply(audit.Store, audit.Signer, "node-1", middle, DateTimeOffset.UtcNow)); // nothing more to remove
    }

    [Fact]
    public async Task A_long_backlog_is_removed_in_steps_each_signed_and_verifiable()
    {
        await using var audit = await Filled(out _);
        var cutoff = DateTimeOffset.UtcNow.AddMinutes(1); // everything is due
        var steps = new List<long>();
        while (AuditRetention.Apply(audit.Store, audit.Signer, "node-1", cutoff, DateTimeOffset.UtcNow, maxEntries: 15) is { } record)
        {
            steps.Add(record.ThroughSequence);
            var verdict = audit.Verify();
            Assert.True(verdict.Ok, verdict.Message);
        }

        Assert.Equal([20, 40], steps); // whole segments (a checkpoint every 10) of at least 15 entries
        Assert.Equal(40, audit.Store.Retention("node-1")?.ThroughSequence);
    }

    [Fact]
    public async Task Entries_stamped_in_the_past_by_a_clock_running_behind_do_not_take_newer_ones_with_them()
    {
        // Entries 1 to 10 are old; 11 to 40 recent, except 29 and 30 (and the checkpoint at 30), written while the node's
        // clock ran a year behind (booted on a flat clock battery, before NTP stepped it).
        var now = DateTimeOffset.UtcNow;
        var audit = new AuditChainFixture(new AuditLogOptions { CheckpointEvery = 10, MaxBatch = 1 });
        await using (audit)
        {
            foreach (var i in Enumerable.Range(1, 40))
            {
                var time = i <= 10 ? now.AddDays(-100) : i is 29 or 30 ? now.AddDays(-365) : now.AddMinutes(i - 60);
                await audit.Log.RecordAsync(AuditChainFixture.Record(i) with { Time = time });
            }

            await audit.CloseLogAsync();

            var record = AuditRetention.Apply(audit.Store, audit.Signer, "node-1", now.AddDays(-90), now);

            Assert.Equal(10, record?.ThroughSequence); // not 30: entries 11 to 28 are recent
            Assert.True(audit.Verify().Ok);
        }
    }

    [Fact]
    public async Task Removing_more_than_the_retention_record_covers_is_found()
    {
        await using var audit = await Filled(out var middle);
        AuditRetention.Apply(audit.Store, audit.Signer, "node-1", middle, DateTimeOffset.UtcNow);
        Sql(audit, "DELETE FROM audit_entries WHERE seq <= 23");
        var verdict = audit.Verify();
        Assert.Equal((ChainProblem.Deleted, 21L), (verdict.Problem, verdict.FirstBrokenSequence ?? 0));
    }

    [Fact]
    public async Task A_retention_record_stretched_by_hand_is_found()
    {
        await using var audit = await Filled(out var middle);
        AuditRetention.Apply(audit.Store, audit.Signer, "node-1", middle, DateTimeOffset.UtcNow);
        Sql(audit, "UPDATE audit_retention SET through_seq = 25, through_hash = (SELECT hash FROM audit_entries WHERE seq = 25)");
        Sql(audit, "DELETE FROM audit_entries WHERE seq <= 25");
        var verdict = audit.Verify();
        Assert.Equal((ChainProblem.ForgedCheckpoint, 25L), (verdict.Problem, verdict.FirstBrokenSequence ?? 0));
    }

    [Fact]
    public async Task A_chain_that_retention_emptied_goes_on_from_the_signed_record_after_a_restart()
    {
        // A node idle for the whole retention period: its last checkpoint is its head, and everything goes. Should the
        // entry that says so be lost (a crash right after), the restarted writer must still go on from the record.
        await using var audit = await Filled(out _);
        var record = AuditRetention.Apply(audit.Store, audit.Signer, "node-1", DateTimeOffset.UtcNow.AddMinutes(1), DateTimeOffset.UtcNow);
        Assert.Equal(40, record?.ThroughSequence);
        Assert.Null(audit.Store.Head("node-1"));

        audit.Reopen(new AuditLogOptions { CheckpointEvery = 10, MaxBatch = 1 });
        await audit.Log.RecordAsync(AuditChainFixture.Record(41));
        await audit.CloseLogAsync();

        Assert.Equal(41, audit.Store.Chain("node-1").Single().Sequence);
        var verdict = audit.Verify();
        Assert.True(verdict.Ok, verdict.Message);
        Assert.Null(AuditRetention.Apply(audit.Store, audit.Signer, "node-1", DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow));
    }

    [Fact]
    public async Task The_chain_of_a_retired_node_is_removed_once_idle_for_the_whole_period_and_the_set_still_verifies()
    {
        // node-2 served a while a year ago and was retired; node-1 serves on and witnessed node-2's last checkpoint.
        await using var audit = new AuditChainFixture(new AuditLogOptions { CheckpointEvery = 10, MaxBatch = 1 });
        var yearAgo = DateTimeOffset.UtcNow.AddDays(-365);
        await using (var retired = new AuditLog(audit.Store, audit.Signer, "node-2", TimeProvider.System, new AuditLogOptions { CheckpointEvery = 10, MaxBatch = 1 },
            Microsoft.Extensions.Logging.Abstractions.NullLogger<AuditLog>.Instance))
        {
            foreach (var i in Enumerable.Range(1, 25))
            {
                await retired.RecordAsync(AuditChainFixture.Record(i) with { Time = yearAgo.AddMinutes(i) });
            }
        }

        foreach (var i in Enumerable.Range(1, 25))
        {
            await audit.Log.RecordAsync(AuditChainFixture.Record(100 + i));
        }

        await audit.CloseLogAsync();
        var cutoff = DateTimeOffset.UtcNow.AddDays(-90);
        var steps = AuditRetention.IdleChainSteps(audit.Store, audit.Signer, "node-1", cutoff, DateTimeOffset.UtcNow).ToList();

        var (chain, record) = Assert.Single(steps);
        Assert.Equal("node-2", chain);
        Assert.Null(audit.Store.Head("node-2")); // all of it was older than the cutoff
        Assert.Equal(record.ThroughSequence, audit.Store.Retention("node-2")?.ThroughSequence);
        Assert.Equal(25, audit.Store.Chain("node-1").Count(e => e.Record.Kind != AuditKinds.Witness)); // the live chain is not touched
        using var key = audit.PublicKey();
        Assert.All(new Cluster.ClusterAuditView(audit.Store).Verify(new IncrementalVerifier(), key, full: true),
            v => Assert.True(v.Verification.Ok, $"{v.Node}: {v.Verification.Message}"));
        Assert.Empty(AuditRetention.IdleChainSteps(audit.Store, audit.Signer, "node-1", cutoff, DateTimeOffset.UtcNow)); // nothing more
    }

    [Fact]
    public async Task A_chain_with_recent_entries_is_not_taken_for_idle()
    {
        await using var audit = await Filled(out var middle);
        Assert.Empty(AuditRetention.IdleChainSteps(audit.Store, audit.Signer, "node-0", middle, DateTimeOffset.UtcNow));
        Assert.Equal(40, audit.Store.Chain("node-1").Count());
    }

    private static Task<AuditChainFixture> Filled(out DateTimeOffset middle)
    {
        var start = DateTimeOffset.UtcNow.AddHours(-1);
        middle = start.AddMinutes(25.5); // entries 1 to 25 are older
        return Fill(start);
    }

    private static async Task<AuditChainFixture> Fill(DateTimeOffset start)
    {
        var audit = new AuditChainFixture(new AuditLogOptions { CheckpointEvery = 10, MaxBatch = 1 });
        foreach (var i in Enumerable.Range(1, 40))
        {
            await audit.Log.RecordAsync(AuditChainFixture.Record(i) with { Time = start.AddMinutes(i) });
        }

        await audit.CloseLogAsync();
        return audit;
    }

    private static void Sql(AuditChainFixture audit, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={audit.Folder.Combine("audit.db")};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        Assert.True(command.ExecuteNonQuery() > 0, sql);
    }
}
