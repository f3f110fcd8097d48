using System.Collections;
using Appliance.Audit.Chain;
using Appliance.Audit.Stores;

namespace Appliance.Audit.Tests;

/// <summary>
/// Reads of the embedded store (searches, the usage report, verification, the writer's own look at the checkpoints)
/// must not wait for an append, nor an append for them: a usage report over a year would otherwise hold up every
/// request's accepted record for as long as it scans.
/// </summary>
public sealed class SqliteReadersTests
{
    [Fact]
    public async Task Reads_answer_while_an_append_holds_the_writer()
    {
        await using var fixture = new AuditChainFixture();
        for (var i = 1; i <= 20; i++)
        {
            await fixture.Log.RecordAsync(AuditChainFixture.Record(i) with { Kind = AuditKinds.Completed });
        }

        await fixture.CloseLogAsync();
        var head = fixture.Store.Head("node-1")!.Value;
        using var appending = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var record = AuditChainFixture.Record(99);
        var hash = CanonicalJson.Hash(head.Sequence + 1, "node-1", record, head.Hash);
        var entries = new HeldEntries([new AuditEntry(head.Sequence + 1, "node-1", record, head.Hash, hash)], appending, release);
        var append = Task.Run(() => fixture.Store.Append(entries, null));
        Assert.True(appending.Wait(TimeSpan.FromSeconds(30)), "the append did not start");
        try
        {
            // Each read on its own thread with a generous limit: one that waited for the writer would never return.
            var from = DateTimeOffset.UtcNow.AddDays(-365);
            var reads = new Func<object>[]
            {
                () => fixture.Store.Usage(null, from, DateTimeOffset.UtcNow.AddDays(1), "user") is { Count: > 0 } rows ? rows : throw new InvalidOperationException("no usage"),
                () => fixture.Store.Query("node-1", new AuditQuery { Limit = 100 }),
                () => fixture.Store.LatestCheckpoints(),
                () => fixture.Store.Checkpoints("node-1"),
            };
            foreach (var read in reads)
            {
                var answer = Task.Run(read);
                Assert.True(await Task.WhenAny(answer, Task.Delay(TimeSpan.FromSeconds(30))) == answer, "a read waited for the append");
                Assert.NotNull(await answer);
            }

            Assert.Equal(20, fixture.Store.Usage(null, from, DateTimeOffset.UtcNow.AddDays(1), "user").Sum(row => row.Requests));
        }
        finally
        {
            release.Set();
        }

        await append;
        Assert.Equal(head.Sequence + 1, fixture.Store.Head("node-1")!.Value.Sequence);
    }

    [Fact]
    public async Task Reads_answer_while_another_read_is_still_running()
    {
        await using var fixture = new AuditChainFixture();
        for (var i = 1; i <= 5; i++)
        {
            await fixture.Log.RecordAsync(AuditChainFixture.Record(i) with { Kind = AuditKinds.Completed });
        }

        await fixture.CloseLogAsync();
        using var reading = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        // A read that takes its time (a year's usage report, a full verification), held inside the store's read path.
        var withReadConnection = typeof(SqlAuditStore).GetMethod("WithReadConnection", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!
            .MakeGenericMethod(typeof(int));
        var slow = Task.Run(() => withReadConnection.Invoke(fixture.Store, [new Func<System.Data.Common.DbConnection, int>(_ =>
        {
            reading.Set();
            release.Wait(TimeSpan.FromMinutes(2));
            return 0;
        })]));
        Assert.True(reading.Wait(TimeSpan.FromSeconds(30)), "the slow read did not start");
        try
        {
            var from = DateTimeOffset.UtcNow.AddDays(-365);
            foreach (var read in new Func<object>[]
            {
                () => fixture.Store.Usage(null, from, DateTimeOffset.UtcNow.AddDays(1), "user"),
                () => fixture.Store.Query("node-1", new AuditQuery { Limit = 100 }),
                () => fixture.Store.Checkpoints("node-1"),
            })
            {
                var answer = Task.Run(read);
                Assert.True(await Task.WhenAny(answer, Task.Delay(TimeSpan.FromSeconds(30))) == answer, "a read waited for another read");
            }
        }
        finally
        {
            release.Set();
        }

        await slow;
    }

    /// <summary>Entries whose enumeration, inside the store's append (and so inside its writer lock), waits to be released.</summary>
    private sealed class HeldEntries(IReadOnlyList<AuditEntry> entries, ManualResetEventSlim appending, ManualResetEventSlim release) : IReadOnlyList<AuditEntry>
    {
        public AuditEntry this[int index] => entries[index];

        public int Count => entries.Count;

        public IEnumerator<AuditEntry> GetEnumerator()
        {
            appending.Set();
            release.Wait(TimeSpan.FromMinutes(2));
            return entries.GetEnumerator();
        }

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
