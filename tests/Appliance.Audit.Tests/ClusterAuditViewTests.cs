using System.Security.Cryptography;
using Appliance.Audit.Chain;
using Appliance.Audit.Cluster;
using Appliance.Audit.Stores;
using Appliance.Tests.Common;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Audit.Tests;

/// <summary>Reading several nodes' chains as one audit log: paging, usage and verification over a real store.</summary>
public sealed class ClusterAuditViewTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2026, 12, 1, 9, 0, 0, TimeSpan.Zero);
    private readonly TempFolder _folder = new("audit-cluster-view");
    private readonly SqliteAuditStore _store;
    private readonly CheckpointSigner _signer;

    public ClusterAuditViewTests()
    {
        _store = new SqliteAuditStore(_folder.Combine("audit.db"));
        _signer = CheckpointSigner.LoadOrCreate(_folder.Combine("key.pem"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Paging_through_two_chains_returns_every_entry_once_each_chain_in_its_own_order(bool newestFirst)
    {
        // The nodes' clocks interleave, and within a chain the recorded times are not in sequence order (records are
        // stamped before they queue for the writer): a cursor per chain must still neither skip nor repeat.
        await RecordAsync("node-a", [5, 1, 9, 3, 7, 2, 8]);
        await RecordAsync("node-b", [4, 6, 0, 10, 11]);
        var view = new ClusterAuditView(_store);

        var seen = new List<AuditEntry>();
        AuditCursor? cursor = null;
        var pages = 0;
        do
        {
            // The requests only: node-b's chain also holds its witness of node-a's checkpoint.
            var page = view.Page(new AuditQuery { Kind = AuditKinds.Accepted, NewestFirst = newestFirst, Limit = 3 }, node: null, cursor);
            seen.AddRange(page.Entries);
            cursor = page.Next is null ? null : Reparsed(page.Next);
            pages++;
        }
        while (cursor is not null && pages < 20);

        Assert.Equal(12, seen.Count);
        Assert.Equal(12, seen.Select(e => (e.Node, e.Sequence)).Distinct().Count());
        foreach (var node in new[] { "node-a", "node-b" })
        {
            var order = seen.Where(e => e.Node == node).Select(e => e.Sequence).ToList();
            Assert.Equal(newestFirst ? order.OrderDescending() : order.Order(), order);
        }

        // The first page starts with the oldest (or newest) head of the two chains.
        var first = view.Page(new AuditQuery { Kind = AuditKinds.Accepted, NewestFirst = newestFirst, Limit = 1 }, null, null).Entries.Single();
        Assert.Equal(newestFirst ? ("node-b", 5L) : ("node-b", 1L), (first.Node, first.Sequence)); // heads: a1 at 5, b1 at 4; a7 at 8, b5 at 11
    }

    [Fact]
    public async Task A_cursor_at_the_end_picks_up_entries_appended_later_and_a_node_filter_keeps_to_one_chain()
    {
        await RecordAsync("node-a", [1, 2]);
        await RecordAsync("node-b", [3]);
        var view = new ClusterAuditView(_store);
        var requests = new AuditQuery { Kind = AuditKinds.Accepted, Limit = 3 }; // node-b's chain also holds its witness of node-a (entry 2)
        var all = view.Page(requests, null, null);
        Assert.Equal(3, all.Entries.Count);
        Assert.NotNull(all.Next);

        await RecordAsync("node-b", [4]);
        await RecordAsync("node-c", [5]);
        var later = view.Page(requests with { Limit = 10 }, null, all.Next);
        Assert.Equal([("node-b", 3L), ("node-c", 1L)], later.Entries.Select(e => (e.Node, e.Sequence)));
        Assert.Null(later.Next);

        Assert.All(view.Page(new AuditQuery { Limit = 10 }, "node-b", null).Entries, e => Assert.Equal("node-b", e.Node));
        Assert.Equal(["node-a", "node-b", "node-c"], view.Chains(null));
        Assert.Equal(["node-b"], view.Chains("node-b"));
        Assert.Equal(AuditKinds.Witness, view.Entry("node-b", 2)!.Record.Kind);
        Assert.Null(view.Entry("node-b", 5));
    }

    [Fact]
    public void Cursors_round_trip_and_anything_else_is_refused()
    {
        var cursor = new AuditCursor(newestFirst: true).With("node-a", 7).With("node:b,2", 3);
        Assert.True(AuditCursor.TryParse(cursor.Encode(), out var parsed, out _));
        Assert.True(parsed!.NewestFirst);
        Assert.Equal(7L, parsed.PositionOf("node-a"));
        Assert.Equal(3L, parsed.PositionOf("node:b,2"));
        Assert.Null(parsed.PositionOf("node-c"));

        foreach (var text in new[] { "12", "not a cursor!", "eyJPcmRlciI6InNpZGV3YXlzIiwiUG9zaXRpb25zIjp7fX0", string.Empty })
        {
            Assert.False(AuditCursor.TryParse(text, out _, out var error), text);
            Assert.Contains("cursor", error, StringComparison.Ordinal);
        }

        Assert.Throws<ArgumentException>(() => new ClusterAuditView(_store).Page(new AuditQuery(), null, parsed)); // a newest-first cursor, oldest-first query
    }

    [Fact]
    public async Task Usage_covers_every_chain_and_verification_reports_each_one_naming_a_foreign_key()
    {
        await RecordAsync("node-a", [1, 2], AuditKinds.Completed);
        await RecordAsync("node-b", [3], AuditKinds.Completed);
        using (var otherSigner = CheckpointSigner.LoadOrCreate(_folder.Combine("other-key.pem")))
        {
            await RecordAsync("node-c", [4], AuditKinds.Completed, otherSigner); // a node that made a key of its own
        }

        var view = new ClusterAuditView(_store);
        var usage = Assert.Single(view.Usage(Start.AddDays(-1), Start.AddDays(1), "model"));
        Assert.Equal(4, usage.Requests);
        Assert.Equal(2, Assert.Single(view.Usage(Start.AddDays(-1), Start.AddDays(1), "model", node: "node-a")).Requests);

        using var key = ECDsa.Create();
        key.ImportFromPem(_signer.PublicKeyPem());
        var verdicts = view.Verify(new IncrementalVerifier(), key, full: true);
        Assert.Equal(["node-a", "node-b", "node-c"], verdicts.Select(v => v.Node));
        Assert.True(verdicts[0].Verification.Ok, verdicts[0].Verification.Message);
        Assert.True(verdicts[1].Verification.Ok, verdicts[1].Verification.Message);
        Assert.False(verdicts[2].Verification.Ok);
        Assert.Equal(ChainProblem.ForgedCheckpoint, verdicts[2].Verification.Problem);
        Assert.Contains($"not the audit key {_signer.KeyId}", verdicts[2].Verification.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Each_node_signs_a_witness_of_the_others_checkpoints_only_when_they_moved()
    {
        await RecordAsync("node-a", [1]);
        using (var database = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_folder.Combine("audit.db")};Pooling=False"))
        {
            // A checkpoint row nobody signed (written straight into the database) is not vouched for by a witness.
            database.Open();
            using var forged = database.CreateCommand();
            forged.CommandText = $"INSERT INTO audit_checkpoints VALUES ('node-x', 9, 'abc', '2026-12-01T09:00:00.0000000Z', '{_signer.KeyId}', 'AAAA')";
            forged.ExecuteNonQuery();
        }

        await RecordAsync("node-b", [2, 3]);

        var witness = Assert.Single(_store.Chain("node-b"), e => e.Record.Kind == AuditKinds.Witness);
        var seen = Assert.Single(ChainWitness.Read(witness.Record)!);
        Assert.Equal(new WitnessedCheckpoint("node-a", 1, _store.Head("node-a")!.Value.Hash), seen);
        Assert.Equal(witness.Sequence, _store.Checkpoints("node-b")[^1].Sequence); // the checkpoint after it covers it
        Assert.Null(_store.Chain("node-a").SingleOrDefault(e => e.Record.Kind == AuditKinds.Witness)); // node-b had no checkpoint yet

        // Restarted, with two checkpoints while node-a has not moved: the witness it finds in its chain still holds.
        await using (var log = new AuditLog(_store, _signer, "node-b", TimeProvider.System, new AuditLogOptions { CheckpointEvery = 1 }, NullLogger<AuditLog>.Instance))
        {
            await log.RecordAsync(AuditChainFixture.Record(4) with { Time = Start.AddMinutes(4) });
            await log.RecordAsync(AuditChainFixture.Record(5) with { Time = Start.AddMinutes(5) });
        }

        Assert.Single(_store.Chain("node-b"), e => e.Record.Kind == AuditKinds.Witness);
        Assert.True(_store.Checkpoints("node-b").Count >= 3);
    }

    [Fact]
    public async Task A_witness_retention_removed_is_written_again_at_the_next_checkpoint()
    {
        await RecordAsync("node-a", [1]);
        await using (var log = new AuditLog(_store, _signer, "node-b", TimeProvider.System, new AuditLogOptions { CheckpointEvery = 1 }, NullLogger<AuditLog>.Instance))
        {
            await log.RecordAsync(AuditChainFixture.Record(2) with { Time = Start.AddMinutes(2) }); // with a witness naming node-a
            await log.RecordAsync(AuditChainFixture.Record(3) with { Time = Start.AddMinutes(3) }); // none: node-a has not moved
            var first = Assert.Single(_store.Chain("node-b"), e => e.Record.Kind == AuditKinds.Witness);

            // Retention removes node-b's sealed entries, the witness with them; node-a still has not moved.
            var removed = AuditRetention.Apply(_store, _signer, "node-b", DateTimeOffset.UtcNow.AddSeconds(1), DateTimeOffset.UtcNow);
            Assert.True(removed?.ThroughSequence > first.Sequence);
            Assert.DoesNotContain(_store.Chain("node-b"), e => e.Record.Kind == AuditKinds.Witness);

            await log.RecordAsync(AuditChainFixture.Record(4) with { Time = Start.AddMinutes(4) });
        }

        var again = Assert.Single(_store.Chain("node-b"), e => e.Record.Kind == AuditKinds.Witness);
        Assert.Equal(["node-a"], ChainWitness.Read(again.Record)!.Select(c => c.Node));
        using var key = ECDsa.Create();
        key.ImportFromPem(_signer.PublicKeyPem());
        Assert.All(new ClusterAuditView(_store).Verify(new IncrementalVerifier(), key, full: true), chain => Assert.True(chain.Verification.Ok, chain.Verification.Message));
    }

    [Fact]
    public async Task A_witness_appended_after_the_last_checkpoint_is_not_taken_up_at_restart()
    {
        await RecordAsync("node-a", [1]);
        await RecordAsync("node-b", [2]); // its signed witness names node-a

        // Someone with the database appends to node-b, past its last checkpoint, a witness naming nobody, and removes
        // node-a's checkpoints so that nothing would name node-a again.
        var head = _store.Head("node-b")!.Value;
        var forged = CanonicalJson.Normalize(new AuditRecord { Time = Start, Kind = AuditKinds.Witness, Detail = "[]" });
        var sequence = head.Sequence + 1;
        _store.Append([new AuditEntry(sequence, "node-b", forged, head.Hash, CanonicalJson.Hash(sequence, "node-b", forged, head.Hash))], null);
        using (var database = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_folder.Combine("audit.db")};Pooling=False"))
        {
            database.Open();
            using var command = database.CreateCommand();
            command.CommandText = "DELETE FROM audit_checkpoints WHERE node = 'node-a'";
            command.ExecuteNonQuery();
        }

        await RecordAsync("node-c", [3]);
        await RecordAsync("node-b", [4]); // restarted: carries forward its last signed witness, not the forged one

        var latest = ChainWitness.Read(_store.LatestWitness("node-b", long.MaxValue)!.Record)!;
        Assert.Equal(["node-a", "node-c"], latest.Select(c => c.Node));
    }

    [Theory]
    [InlineData("deleted")]
    [InlineData("cut")]
    [InlineData("rewritten")]
    public async Task Verifying_the_set_finds_a_chain_deleted_or_cut_with_its_checkpoints_through_the_others_witness(string damage)
    {
        await RecordAsync("node-a", [1, 2, 3]);
        await RecordAsync("node-b", [4]); // witnesses node-a's checkpoint at entry 3
        using var key = ECDsa.Create();
        key.ImportFromPem(_signer.PublicKeyPem());
        Assert.All(new ClusterAuditView(_store).Verify(new IncrementalVerifier(), key, full: true), v => Assert.True(v.Verification.Ok, v.Verification.Message));

        // What a chain's own checkpoints cannot show: its entries removed, or one rewritten with a hash that fits (no
        // secret goes into it), with the checkpoints over them.
        var third = _store.Chain("node-a").Single(e => e.Sequence == 3);
        var rewrittenHash = CanonicalJson.Hash(3, "node-a", third.Record with { Detail = "rewritten" }, third.PreviousHash);
        using (var database = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_folder.Combine("audit.db")};Pooling=False"))
        {
            database.Open();
            using var command = database.CreateCommand();
            command.CommandText = damage switch
            {
                "deleted" => "DELETE FROM audit_entries WHERE node = 'node-a'; DELETE FROM audit_checkpoints WHERE node = 'node-a';",
                "cut" => "DELETE FROM audit_entries WHERE node = 'node-a' AND seq = 3; DELETE FROM audit_checkpoints WHERE node = 'node-a';",
                _ => $"UPDATE audit_entries SET hash = '{rewrittenHash}', detail = 'rewritten' WHERE node = 'node-a' AND seq = 3; DELETE FROM audit_checkpoints WHERE node = 'node-a';",
            };
            command.ExecuteNonQuery();
        }

        // Later witnesses carry the earlier one forward: node-b, restarted, witnesses a new node-c and still names
        // node-a's checkpoint at entry 3, however node-a now looks.
        await RecordAsync("node-c", [5]);
        await RecordAsync("node-b", [6]);
        var latest = _store.LatestWitness("node-b", long.MaxValue)!;
        Assert.True(latest.Sequence > 2);
        Assert.Equal(["node-a", "node-c"], ChainWitness.Read(latest.Record)!.Select(c => c.Node));

        var verdicts = new ClusterAuditView(_store).Verify(new IncrementalVerifier(), key, full: true);

        var nodeA = Assert.Single(verdicts, v => v.Node == "node-a").Verification;
        Assert.False(nodeA.Ok, nodeA.Message);
        Assert.Contains($"node node-b's signed entry {latest.Sequence} witnessed its checkpoint at entry 3", nodeA.Message, StringComparison.Ordinal);
        Assert.Equal(damage == "rewritten" ? ChainProblem.Modified : ChainProblem.Truncated, nodeA.Problem);
        Assert.True(Assert.Single(verdicts, v => v.Node == "node-b").Verification.Ok);
        Assert.True(Assert.Single(verdicts, v => v.Node == "node-c").Verification.Ok);
        // An export may hold some chains only: there a chain witnessed but absent is no finding.
        if (damage == "deleted")
        {
            var exported = new List<(string, ChainVerification)> { ("node-b", ChainVerifier.Verify(_store.Chain("node-b"), _store.Checkpoints("node-b"), key)) };
            var partial = ChainWitness.Check(exported, _store.LatestWitness, (_, _) => null, _ => 0, missingIsGone: false);
            // ... and in a file written while the nodes wrote, a checkpoint past the end of a chain it holds is none either.
            var written = new List<(string, ChainVerification)> { exported[0], ("node-a", ChainVerifier.Verify([], [], key)) };
            Assert.All(ChainWitness.Check(written, _store.LatestWitness, (_, _) => null, _ => 0, missingIsGone: false, beyondEnd: (_, _) => true), v => Assert.True(v.Verdict.Ok));
            Assert.True(Assert.Single(partial).Verdict.Ok);
        }

        // An export of every chain, verified offline, finds the rewritten entry through the witness too (a chain cut at
        // its end or missing is no finding there: the file may have been written while the nodes wrote).
        if (damage == "rewritten")
        {
            using var file = new MemoryStream();
            await Export.AuditExport.WriteAllAsync(file, _store, _store.Nodes(), _signer, TimeProvider.System, CancellationToken.None);

            var text = System.Text.Encoding.UTF8.GetString(file.ToArray());
            var scan = Export.ExportVerifier.Scan(() => new StringReader(text));
            var fromFile = Assert.Single(Export.ExportVerifier.Verify(scan, Export.ExportVerifier.Nodes(scan), key, witnesses: true), v => v.Node == "node-a").Verdict;
            Assert.Equal((false, ChainProblem.Modified), (fromFile.Ok, fromFile.Problem));
            Assert.Contains($"node node-b's signed entry {latest.Sequence} witnessed its checkpoint at entry 3", fromFile.Message, StringComparison.Ordinal);

            // The file is read once per pass: one that changes between them is refused, not half verified.
            var reads = 0;
            var changing = Export.ExportVerifier.Scan(() => new StringReader(reads++ == 0 ? text : text.Replace("\"seq\":2,", "\"seq\":7,", StringComparison.Ordinal)));
            Assert.Throws<InvalidDataException>(() => Export.ExportVerifier.Verify(changing, ["node-a"], key, witnesses: false));
        }

        // Its own verification finds nothing: a node-scoped verification checks that chain alone, as before.
        if (damage != "deleted")
        {
            var alone = Assert.Single(new ClusterAuditView(_store).Verify(new IncrementalVerifier(), key, full: true, node: "node-a")).Verification;
            Assert.True(alone.Ok, alone.Message);
        }
    }

    public void Dispose()
    {
        _store.Dispose();
        _signer.Dispose();
        _folder.Dispose();
    }

    private static AuditCursor Reparsed(AuditCursor cursor) =>
        AuditCursor.TryParse(cursor.Encode(), out var parsed, out var error) ? parsed! : throw new InvalidOperationException(error);

    /// <summary>One record per minute offset, in this order, appended to <paramref name="node"/>'s chain (closed with a checkpoint).</summary>
    private async Task RecordAsync(string node, int[] minutes, string kind = AuditKinds.Accepted, CheckpointSigner? signer = null)
    {
        await using var log = new AuditLog(_store, signer ?? _signer, node, TimeProvider.System, new AuditLogOptions(), NullLogger<AuditLog>.Instance);
        foreach (var minute in minutes)
        {
            await log.RecordAsync(AuditChainFixture.Record(minute) with { Time = Start.AddMinutes(minute), Kind = kind });
        }
    }
}
