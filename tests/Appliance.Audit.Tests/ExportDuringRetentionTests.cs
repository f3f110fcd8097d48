using Appliance.Audit.Export;

namespace Appliance.Audit.Tests;

/// <summary>
/// An export streams a long chain in pages; a retention run that commits meanwhile removes entries the pages have not
/// reached. The export must still verify offline (it said "entries missing" before), and removing an entry the
/// retention run did not remove must still be found.
/// </summary>
public sealed class ExportDuringRetentionTests
{
    private const int Entries = 6200; // more than one page of the store's 5,000
    private static readonly DateTimeOffset Start = DateTimeOffset.UtcNow.AddDays(-1);

    [Fact]
    public async Task An_export_overtaken_by_a_retention_run_verifies_offline()
    {
        await using var audit = await Filled();
        var (text, through) = await ExportWhileRetentionRuns(audit);

        var export = AuditExport.Read(new StringReader(text));
        Assert.Contains(export.Entries, e => e.Sequence == 1); // streamed before the run removed it
        Assert.DoesNotContain(export.Entries, e => e.Sequence == 5001); // removed before its page was read
        var scan = ExportVerifier.Scan(() => new StringReader(text));
        var (node, verdict) = Assert.Single(ExportVerifier.Verify(scan, ExportVerifier.Nodes(scan), audit.PublicKey(), witnesses: true));

        Assert.Equal("node-1", node);
        Assert.True(verdict.Ok, verdict.Message);
        Assert.Equal(Entries - through, verdict.EntriesChecked);
        Assert.Contains("the 5000 entries exported before that retention run removed them verified too", verdict.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_entry_missing_after_the_retention_point_is_still_found()
    {
        await using var audit = await Filled();
        var (text, through) = await ExportWhileRetentionRuns(audit);
        var removed = through + 50;
        var lines = text.Split('\n').Where(line => !line.StartsWith($"{{\"seq\":{removed},", StringComparison.Ordinal));

        var edited = string.Join('\n', lines);
        var (_, verdict) = Assert.Single(ExportVerifier.Verify(ExportVerifier.Scan(() => new StringReader(edited)), ["node-1"], audit.PublicKey(), witnesses: false));

        Assert.False(verdict.Ok);
        Assert.Equal((Chain.ChainProblem.Deleted, removed), (verdict.Problem, verdict.FirstBrokenSequence ?? 0));
    }

    [Fact]
    public async Task A_later_genuine_retention_record_does_not_cover_entries_changed_by_hand()
    {
        await using var audit = await Filled();
        var (text, through) = await ExportWhileRetentionRuns(audit);
        // Entry 10 was exported before the retention run removed it; someone rewrites who made the request.
        var lines = text.Split('\n').Select(line => line.StartsWith("{\"seq\":10,", StringComparison.Ordinal)
            ? line.Replace("\"username\":\"user0\"", "\"username\":\"nobody\"", StringComparison.Ordinal)
            : line);

        var edited = string.Join('\n', lines);
        var (_, verdict) = Assert.Single(ExportVerifier.Verify(ExportVerifier.Scan(() => new StringReader(edited)), ["node-1"], audit.PublicKey(), witnesses: false));

        Assert.False(verdict.Ok);
        Assert.Equal((Chain.ChainProblem.Modified, 10L), (verdict.Problem, verdict.FirstBrokenSequence ?? 0));
        Assert.True(through > 10);
    }

    private static async Task<AuditChainFixture> Filled()
    {
        // Checkpoints fall at batch ends once CheckpointEvery entries are unsigned: batches of at most 100 keep them
        // fewer than 200 apart, so the one the retention run cuts at lies past the first page (5,000) however the
        // writer batched.
        var audit = new AuditChainFixture(new AuditLogOptions { CheckpointEvery = 100, MaxBatch = 100 });
        await Task.WhenAll(Enumerable.Range(1, Entries).Select(i => audit.Log.RecordAsync(AuditChainFixture.Record(i) with { Time = Start.AddSeconds(i) })));
        await audit.CloseLogAsync();
        return audit;
    }

    /// <summary>
    /// Exports while a retention run commits after the first page was read, removing entries up to the last checkpoint
    /// before entry 5,650 (beyond the first page, so the second page resumes after a gap). Returns the export and where
    /// the retention run cut.
    /// </summary>
    private static async Task<(string Text, long Through)> ExportWhileRetentionRuns(AuditChainFixture audit)
    {
        var through = 0L;
        using var output = new RetentionOnWrite(() =>
        {
            var record = AuditRetention.Apply(audit.Store, audit.Signer, "node-1", Start.AddSeconds(5650), DateTimeOffset.UtcNow);
            through = record?.ThroughSequence ?? 0;
        }, afterLines: 10);
        await AuditExport.WriteAllAsync(output, audit.Store, ["node-1"], audit.Signer, TimeProvider.System, CancellationToken.None);
        Assert.InRange(through, 5001, 5649);
        return (System.Text.Encoding.UTF8.GetString(output.ToArray()), through);
    }

    /// <summary>A buffer that runs an action once, after a number of lines were written to it.</summary>
    private sealed class RetentionOnWrite(Action action, int afterLines) : MemoryStream
    {
        private int _lines;

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (buffer.Span.SequenceEqual("\n"u8) && ++_lines == afterLines)
            {
                action();
            }

            return base.WriteAsync(buffer, cancellationToken);
        }
    }
}
