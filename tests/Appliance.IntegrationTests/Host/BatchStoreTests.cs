using Appliance.Api.Batches;
using Appliance.Host.Batches;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Host;

/// <summary>
/// The batch store's SQL on both databases it runs on (a SQLite file, a real PostgreSQL server): pages of files and
/// batches, the lease two nodes race for, writes that only the lease holder makes, and retention that spares what an
/// open batch reads.
/// </summary>
public sealed class BatchStoreTests : IDisposable
{
    private readonly TempFolder _root = new("batch-store");
    private TestPostgres? _postgres;

    private SqlBatchStore Open(string kind)
    {
        if (kind == "sqlite")
        {
            return new SqliteBatchStore(_root.Combine("batches.db"));
        }

        _postgres = new TestPostgres();
        return new PostgresBatchStore(_postgres.ConnectionString);
    }

    private static readonly DateTimeOffset Start = new(2026, 12, 1, 8, 0, 0, TimeSpan.Zero);

    private static StoredFile File(string id, string owner, int minute, string purpose = StoredFile.BatchInput) =>
        new(id, owner, purpose, $"{id}.jsonl", 3, Start.AddMinutes(minute));

    private static BatchJob Job(string id, string owner, string input, int minute) => new()
    {
        Id = id,
        Owner = owner,
        Endpoint = "/v1/chat/completions",
        InputFileId = input,
        CreatedAt = Start.AddMinutes(minute),
        ExpiresAt = Start.AddMinutes(minute).AddHours(24),
        Claims = [KeyValuePair.Create("preferred_username", owner)],
    };

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgresql")]
    public async Task Files_and_batches_come_in_pages_of_their_owner_newest_first(string kind)
    {
        using var store = Open(kind);
        for (var i = 0; i < 5; i++)
        {
            await store.AddFileAsync(File($"file-{i}", i < 4 ? "ada" : "bob", i), [1, 2, 3], default);
        }

        await store.AddFileAsync(File("file-out", "ada", 9, StoredFile.BatchOutput), [4], default);

        var first = await store.FilesAsync("ada", StoredFile.BatchInput, 2, null, ascending: false, default);
        var next = await store.FilesAsync("ada", StoredFile.BatchInput, 2, first[^1].Id, ascending: false, default);
        var oldest = await store.FilesAsync("ada", null, 10, null, ascending: true, default);
        Assert.Equal(["file-3", "file-2"], first.Select(f => f.Id));
        Assert.Equal(["file-1", "file-0"], next.Select(f => f.Id));
        Assert.Equal(["file-0", "file-1", "file-2", "file-3", "file-out"], oldest.Select(f => f.Id));
        Assert.Equal(new byte[] { 1, 2, 3 }, await store.FileContentAsync("file-2", default));

        for (var i = 0; i < 3; i++)
        {
            await store.AddBatchAsync(Job($"batch_{i}", i < 2 ? "ada" : "bob", "file-0", i), default);
        }

        Assert.Equal(["batch_1", "batch_0"], (await store.BatchesAsync("ada", 10, null, default)).Select(b => b.Id));
        Assert.Equal(["batch_0"], (await store.BatchesAsync("ada", 10, "batch_1", default)).Select(b => b.Id));
        Assert.Equal(["batch_2", "batch_1", "batch_0"], (await store.BatchesAsync(null, 10, null, default)).Select(b => b.Id));
        Assert.True(await store.FileInUseAsync("file-0", default));
        Assert.False(await store.FileInUseAsync("file-1", default));
        Assert.False(await store.DeleteFileAsync("file-0", default)); // an open batch reads it
        Assert.True(await store.DeleteFileAsync("file-1", default));
        Assert.NotNull(await store.FileAsync("file-0", default));
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgresql")]
    public async Task One_node_takes_a_batch_and_only_its_writes_count_until_the_lease_runs_out(string kind)
    {
        using var store = Open(kind);
        await store.AddFileAsync(File("file-in", "ada", 0), [1], default);
        await store.AddBatchAsync(Job("batch_a", "ada", "file-in", 0), default);
        var now = Start.AddMinutes(1);

        var taken = await store.LeaseNextAsync("node-1", now, now.AddMinutes(1), [], default);
        Assert.Equal("batch_a", taken?.Id);
        Assert.Null(await store.LeaseNextAsync("node-2", now.AddSeconds(30), now.AddMinutes(2), [], default));
        Assert.Null(await store.LeaseNextAsync("node-1", now, now.AddMinutes(1), ["batch_a"], default));

        await store.AddResultAsync("batch_a", 0, false, "first", "node-1", default);
        await store.AddResultAsync("batch_a", 1, true, "second", "node-2", default); // not its lease: dropped
        await store.AddResultAsync("batch_a", 0, true, "again", "node-1", default); // answered once: kept as first answered
        Assert.Equal(new HashSet<int> { 0 }, await store.AnsweredAsync("batch_a", default));
        Assert.False(await store.UpdateBatchAsync(taken! with { Status = BatchStatus.InProgress }, BatchStatus.Validating, default, "node-2"));
        Assert.True(await store.UpdateBatchAsync(taken with { Status = BatchStatus.InProgress, Total = 2 }, BatchStatus.Validating, default, "node-1"));

        // The lease runs out: node-2 takes the batch over and node-1's renewal fails.
        var later = now.AddMinutes(5);
        var takenOver = await store.LeaseNextAsync("node-2", later, later.AddMinutes(1), [], default);
        Assert.Equal((BatchStatus.InProgress, 2), (takenOver?.Status, takenOver?.Total));
        Assert.False(await store.RenewLeaseAsync("batch_a", "node-1", later.AddMinutes(1), default));
        Assert.True(await store.RenewLeaseAsync("batch_a", "node-2", later.AddMinutes(1), default));

        // Let go until a quota resets: no node takes it before then.
        await store.ReleaseLeaseAsync("batch_a", "node-2", default, later.AddHours(3));
        Assert.Null(await store.LeaseNextAsync("node-3", later.AddHours(2), later.AddHours(2).AddMinutes(1), [], default));
        Assert.NotNull(await store.LeaseNextAsync("node-2", later.AddHours(3), later.AddHours(4), [], default));

        // A cancellation and a finish race: whichever changes the state first wins, the other sees it changed.
        Assert.True(await store.RequestCancelAsync("batch_a", later, default));
        Assert.False(await store.RequestCancelAsync("batch_a", later, default));
        var cancelling = (await store.BatchAsync("batch_a", default))!;
        Assert.Equal((BatchStatus.Cancelling, 1, 0), (cancelling.Status, cancelling.Completed, cancelling.Failed));
        var output = File("file-result", "ada", 6, StoredFile.BatchOutput);
        Assert.False(await store.FinishAsync(cancelling with { Status = BatchStatus.Completed, OutputFileId = output.Id }, BatchStatus.InProgress, [(output, [7])], "node-2", default));
        Assert.Null(await store.FileAsync(output.Id, default)); // nothing of a finish that did not happen
        Assert.True(await store.FinishAsync(cancelling with { Status = BatchStatus.Cancelled, OutputFileId = output.Id, Completed = 1 }, BatchStatus.Cancelling, [(output, [7])], "node-2", default));
        Assert.Empty(await store.ResultsAsync("batch_a", default));
        Assert.Equal(new byte[] { 7 }, await store.FileContentAsync(output.Id, default));
        var finished = (await store.BatchAsync("batch_a", default))!;
        Assert.Equal((BatchStatus.Cancelled, 1), (finished.Status, finished.Completed));
        Assert.Null(await store.LeaseNextAsync("node-3", later.AddHours(1), later.AddHours(2), [], default));
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgresql")]
    public async Task Retention_deletes_what_ended_and_spares_what_an_open_batch_reads(string kind)
    {
        using var store = Open(kind);
        await store.AddFileAsync(File("file-old", "ada", 0), [1], default);
        await store.AddFileAsync(File("file-read", "ada", 0), [1], default);
        await store.AddFileAsync(File("file-new", "ada", 60 * 24 * 40), [1], default);
        await store.AddBatchAsync(Job("batch_done", "ada", "file-old", 0), default);
        await store.AddBatchAsync(Job("batch_open", "ada", "file-read", 0), default);
        var done = (await store.BatchAsync("batch_done", default))!;
        Assert.True(await store.FinishAsync(done with { Status = BatchStatus.Completed }, BatchStatus.Validating, [], null, default));

        var (batches, files) = await store.DeleteOlderThanAsync(Start.AddDays(30), default);

        Assert.Equal((1, 1), (batches, files));
        Assert.Null(await store.BatchAsync("batch_done", default));
        Assert.NotNull(await store.BatchAsync("batch_open", default));
        Assert.Equal(["file-new", "file-read"], (await store.FilesAsync("ada", null, 10, null, ascending: false, default)).Select(f => f.Id));
    }

    public void Dispose()
    {
        _postgres?.Dispose();
        _root.Dispose();
    }
}
