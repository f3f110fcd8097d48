using Appliance.Audit.Chain;
using Appliance.Audit.Export;
using Appliance.Audit.Stores;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

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
    public async Task An_append_whose_answer_was_lost_is_found_written_and_the_chain_goes_on_after_it()
    {
        await using var audit = new AuditChainFixture();
        await audit.CloseLogAsync();
        var store = new AnswerLostStore(audit.Store);
        await using var log = new AuditLog(store, audit.Signer, "node-1", TimeProvider.System, new AuditLogOptions(), NullLogger<AuditLog>.Instance);
        Assert.Equal(1, (await log.RecordAsync(AuditChainFixture.Record(1))).Sequence);

        // Written, but the store said it failed (a connection lost during the commit): the store holds it, so it stands.
        store.LoseNextAnswer = true;
        Assert.Equal(2, (await log.RecordAsync(AuditChainFixture.Record(2))).Sequence);

        // Written, and the store cannot say so for a while: its caller and the next one are refused, nothing is built
        // on either head meanwhile; then the chain goes on after it instead of colliding with it.
        store.LoseNextAnswer = true;
        store.HeadFailures = 2;
        await Assert.ThrowsAsync<AuditUnavailableException>(() => log.RecordAsync(AuditChainFixture.Record(3)));
        await Assert.ThrowsAsync<AuditUnavailableException>(() => log.RecordAsync(AuditChainFixture.Record(4)));
        Assert.Equal(4, (await log.RecordAsync(AuditChainFixture.Record(5))).Sequence);

        await log.DisposeAsync();
        Assert.True(audit.Verify().Ok);
        Assert.Equal(["req-1", "req-2", "req-3", "req-5"], audit.Store.Chain("node-1").Select(e => e.Record.RequestId));
    }

    [Fact]
    public async Task An_append_that_lands_after_it_was_found_not_written_is_built_on_not_collided_with()
    {
        await using var audit = new AuditChainFixture();
        await audit.CloseLogAsync();
        var store = new AnswerLostStore(audit.Store);
        await using var log = new AuditLog(store, audit.Signer, "node-1", TimeProvider.System, new AuditLogOptions(), NullLogger<AuditLog>.Instance);
        Assert.Equal(1, (await log.RecordAsync(AuditChainFixture.Record(1))).Sequence);

        // No answer, and the head says not written: refused. Then the slow commit lands all the same.
        store.LandNextLate = true;
        await Assert.ThrowsAsync<AuditUnavailableException>(() => log.RecordAsync(AuditChainFixture.Record(2)));
        store.Land();

        // The next append collides with it once and the writer finds the chain moved on; after that, no collisions.
        await Assert.ThrowsAsync<AuditUnavailableException>(() => log.RecordAsync(AuditChainFixture.Record(3)));
        Assert.Equal(3, (await log.RecordAsync(AuditChainFixture.Record(4))).Sequence);
        Assert.Equal(4, (await log.RecordAsync(AuditChainFixture.Record(5))).Sequence);

        await log.DisposeAsync();
        var verdict = audit.Verify();
        Assert.True(verdict.Ok, verdict.Message);
        Assert.Equal(["req-1", "req-2", "req-4", "req-5"], audit.Store.Chain("node-1").Select(e => e.Record.RequestId));
    }

    [Fact]
    public async Task A_checkpoint_the_store_failed_to_write_is_not_taken_for_written_and_is_tried_again()
    {
        await using var audit = new AuditChainFixture();
        await audit.CloseLogAsync();
        var store = new AnswerLostStore(audit.Store);
        // A fake clock: with a real one, a loaded machine let the interval pass before the flag below was set, and the
        // record's own commit wrote the checkpoint.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var interval = TimeSpan.FromSeconds(30);
        await using var log = new AuditLog(store, audit.Signer, "node-1", time,
            new AuditLogOptions { CheckpointInterval = interval }, NullLogger<AuditLog>.Instance);
        await log.RecordAsync(AuditChainFixture.Record(1));
        store.FailNextAppend = true; // the idle checkpoint's append, one interval on (the chain's head does not move with it)

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!audit.Store.Checkpoints("node-1").Any(c => c.Sequence == 1))
        {
            Assert.True(DateTime.UtcNow < deadline, "the failed idle checkpoint was never written");
            time.Advance(interval); // the idle wait, then the pause before its retry
            await Task.Delay(50);
        }

        Assert.False(store.FailNextAppend); // it did fail once
    }

    /// <summary>
    /// A store whose append may take effect and then fail (a commit whose answer a lost connection swallowed), or fail
    /// without effect, and whose head may not be readable for a while.
    /// </summary>
    private sealed class AnswerLostStore(IAuditStore inner) : IAuditStore
    {
        public bool LoseNextAnswer { get; set; }

        public int HeadFailures { get; set; }

        public bool FailNextAppend { get; set; }

        /// <summary>The next append fails at once but takes effect later, when <see cref="Land"/> is called: a commit that outlasted its answer.</summary>
        public bool LandNextLate { get; set; }

        private (IReadOnlyList<AuditEntry> Entries, Checkpoint? Checkpoint)? _late;

        public void Land()
        {
            var (entries, checkpoint) = _late ?? throw new InvalidOperationException("nothing is waiting to land");
            inner.Append(entries, checkpoint);
            _late = null;
        }

        public string Name => inner.Name;

        public (long Sequence, string Hash)? Head(string node)
        {
            if (HeadFailures > 0)
            {
                HeadFailures--;
                throw new InvalidOperationException("the database is not answering");
            }

            return inner.Head(node);
        }

        public void Append(IReadOnlyList<AuditEntry> entries, Checkpoint? checkpoint)
        {
            if (FailNextAppend)
            {
                FailNextAppend = false;
                throw new InvalidOperationException("the database refused the write");
            }

            if (LandNextLate)
            {
                LandNextLate = false;
                _late = (entries, checkpoint);
                throw new TimeoutException("no answer from the database within the command timeout");
            }

            inner.Append(entries, checkpoint);
            if (LoseNextAnswer)
            {
                LoseNextAnswer = false;
                throw new InvalidOperationException("connection lost while committing");
            }
        }

        public IReadOnlyList<AuditEntry> Query(string node, AuditQuery query) => inner.Query(node, query);

        public IEnumerable<AuditEntry> Chain(string node, long afterSequence = 0) => inner.Chain(node, afterSequence);

        public IReadOnlyList<Checkpoint> Checkpoints(string node) => inner.Checkpoints(node);

        public DateTimeOffset? NewestTime(string node, long afterSequence, long throughSequence) => inner.NewestTime(node, afterSequence, throughSequence);

        public AuditEntry? LatestWitness(string node, long throughSequence) => inner.LatestWitness(node, throughSequence);

        public IReadOnlyList<Checkpoint> LatestCheckpoints() => inner.LatestCheckpoints();

        public RetentionRecord? Retention(string node) => inner.Retention(node);

        public void ApplyRetention(RetentionRecord record) => inner.ApplyRetention(record);

        public IReadOnlyList<UsageRow> Usage(string? node, DateTimeOffset from, DateTimeOffset to, string groupBy, IReadOnlyList<string>? teams = null, string? user = null) =>
            inner.Usage(node, from, to, groupBy, teams, user);

        public IReadOnlyList<ConsumptionRow> Consumption(DateTimeOffset since, string? onlyNode, string? exceptNode, DateTimeOffset? before = null) => inner.Consumption(since, onlyNode, exceptNode, before);

        public IReadOnlyList<string> Nodes() => inner.Nodes();

        public void Dispose()
        {
        }
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
