using Appliance.Audit.Chain;
using Appliance.Audit.Export;

namespace Appliance.Audit.Tests;

public sealed class AuditLogTests
{
    [Fact]
    public async Task Concurrent_records_form_one_gapless_chain_that_verifies_with_signed_checkpoints()
    {
        await using var audit = new AuditChainFixture(new AuditLogOptions { CheckpointEvery = 50 });
        var entries = await Task.WhenAll(Enumerable.Range(1, 300).Select(i => Task.Run(() => audit.Log.RecordAsync(AuditChainFixture.Record(i)))));
        await audit.CloseLogAsync();

        Assert.Equal(Enumerable.Range(1, 300).Select(i => (long)i), entries.Select(e => e.Sequence).Order());
        var verdict = audit.Verify();
        Assert.True(verdict.Ok, verdict.Message);
        Assert.Equal(300, verdict.EntriesChecked);
        Assert.True(verdict.CheckpointsChecked >= 1, verdict.Message); // one per commit that reached 50 unsigned entries
        Assert.Equal(300, audit.Store.Checkpoints("node-1")[^1].Sequence);
    }

    [Fact]
    public async Task When_signing_fails_records_are_refused_at_once_and_the_writer_goes_on()
    {
        await using var audit = new AuditChainFixture(new AuditLogOptions { CheckpointEvery = 1 });
        await audit.Log.RecordAsync(AuditChainFixture.Record(1));
        audit.Signer.Dispose(); // the key is gone: every checkpoint now fails to sign

        for (var i = 2; i <= 3; i++)
        {
            var refused = await Assert.ThrowsAsync<AuditUnavailableException>(() => audit.Log.RecordAsync(AuditChainFixture.Record(i)).WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Contains("signed", refused.Message, StringComparison.Ordinal);
        }

        Assert.Equal(1, audit.Store.Head("node-1")?.Sequence); // nothing unsigned was kept
    }

    [Fact]
    public async Task A_restarted_log_continues_the_chain_where_it_ended()
    {
        await using var audit = new AuditChainFixture();
        await audit.Log.RecordAsync(AuditChainFixture.Record(1));
        await audit.CloseLogAsync();

        await using var again = new AuditLog(audit.Store, audit.Signer, "node-1", TimeProvider.System, new AuditLogOptions(),
            Microsoft.Extensions.Logging.Abstractions.NullLogger<AuditLog>.Instance);
        var second = await again.RecordAsync(AuditChainFixture.Record(2));
        await again.DisposeAsync();

        Assert.Equal(2, second.Sequence);
        Assert.True(audit.Verify().Ok);
    }

    [Fact]
    public async Task When_the_store_cannot_take_a_record_the_caller_is_told_and_the_chain_stays_whole()
    {
        await using var audit = new AuditChainFixture();
        await audit.Log.RecordAsync(AuditChainFixture.Record(1));
        using (var full = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={audit.Folder.Combine("audit.db")}"))
        {
            full.Open();
            using var trigger = full.CreateCommand();
            trigger.CommandText = "CREATE TRIGGER refuse BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'disk full'); END;";
            trigger.ExecuteNonQuery();
        }

        var error = await Assert.ThrowsAsync<AuditUnavailableException>(() => audit.Log.RecordAsync(AuditChainFixture.Record(2)));
        Assert.Contains("disk full", error.Message, StringComparison.Ordinal);

        using (var fixedAgain = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={audit.Folder.Combine("audit.db")}"))
        {
            fixedAgain.Open();
            using var drop = fixedAgain.CreateCommand();
            drop.CommandText = "DROP TRIGGER refuse;";
            drop.ExecuteNonQuery();
        }

        Assert.Equal(2, (await audit.Log.RecordAsync(AuditChainFixture.Record(3))).Sequence); // no gap where the failure was
        await audit.CloseLogAsync();
        Assert.True(audit.Verify().Ok);
    }

    [Fact]
    public async Task An_export_round_trips_and_verifies_offline()
    {
        await using var audit = new AuditChainFixture(new AuditLogOptions { CheckpointEvery = 10 });
        foreach (var i in Enumerable.Range(1, 25))
        {
            await audit.Log.RecordAsync(AuditChainFixture.Record(i));
        }

        await audit.CloseLogAsync();
        using var buffer = new MemoryStream();
        await AuditExport.WriteAsync(buffer, audit.Store.Chain("node-1"), audit.Store.Checkpoints("node-1"), CancellationToken.None);
        var (entries, checkpoints, _) = AuditExport.Read(new StringReader(System.Text.Encoding.UTF8.GetString(buffer.ToArray())));

        Assert.Equal(25, entries.Count);
        var verdict = ChainVerifier.Verify(entries, checkpoints, audit.PublicKey());
        Assert.True(verdict.Ok, verdict.Message);
        Assert.Equal(audit.Store.Chain("node-1").Select(e => e.Hash), entries.Select(e => e.Hash));
    }
}
