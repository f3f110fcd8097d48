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
            var page = view.Page(new AuditQuery { NewestFirst = newestFirst, Limit = 3 }, node: null, cursor);
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
        var first = view.Page(new AuditQuery { NewestFirst = newestFirst, Limit = 1 }, null, null).Entries.Single();
        Assert.Equal(newestFirst ? ("node-b", 5L) : ("node-b", 1L), (first.Node, first.Sequence)); // heads: a1 at 5, b1 at 4; a7 at 8, b5 at 11
    }

    [Fact]
    public async Task A_cursor_at_the_end_picks_up_entries_appended_later_and_a_node_filter_keeps_to_one_chain()
    {
        await RecordAsync("node-a", [1, 2]);
        await RecordAsync("node-b", [3]);
        var view = new ClusterAuditView(_store);
        var all = view.Page(new AuditQuery { Limit = 3 }, null, null);
        Assert.Equal(3, all.Entries.Count);
        Assert.NotNull(all.Next);

        await RecordAsync("node-b", [4]);
        await RecordAsync("node-c", [5]);
        var later = view.Page(new AuditQuery { Limit = 10 }, null, all.Next);
        Assert.Equal([("node-b", 2L), ("node-c", 1L)], later.Entries.Select(e => (e.Node, e.Sequence)));
        Assert.Null(later.Next);

        Assert.All(view.Page(new AuditQuery { Limit = 10 }, "node-b", null).Entries, e => Assert.Equal("node-b", e.Node));
        Assert.Equal(["node-a", "node-b", "node-c"], view.Chains(null));
        Assert.Equal(["node-b"], view.Chains("node-b"));
        Assert.Equal(2L, view.Entry("node-b", 2)!.Sequence);
        Assert.Null(view.Entry("node-b", 3));
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
