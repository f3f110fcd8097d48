using System.Globalization;
using Appliance.Audit;
using Appliance.Audit.Chain;

namespace Appliance.Benchmarks;

/// <summary>
/// Memory of a full chain verification: a chain of N entries (a checkpoint every 1,000, as the default) streamed
/// to the verifier without ever being held, and the process's peak working set afterwards.
/// </summary>
internal static class VerifyBench
{
    public static IEnumerable<string> Rows(long entries)
    {
        var checkpoints = Checkpoints(entries);
        var started = System.Diagnostics.Stopwatch.StartNew();
        var verdict = ChainVerifier.Verify(Chain(entries), checkpoints, publicKey: null);
        var seconds = started.Elapsed.TotalSeconds;
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        yield return "| entries | checkpoints | verdict | seconds | peak working set (MiB) |";
        yield return "|---:|---:|---|---:|---:|";
        yield return string.Create(CultureInfo.InvariantCulture,
            $"| {entries:N0} | {checkpoints.Count:N0} | {(verdict.Ok ? "OK" : verdict.Message)} | {seconds:F1} | {process.PeakWorkingSet64 / 1048576} |");
    }

    /// <summary>
    /// The same chain written to an export file and verified from it as <c>appliance audit verify --file</c> does
    /// (streamed, one pass per chain), then, for comparison, the peak after reading the file whole as earlier versions
    /// did before verifying. The peak working set only grows, so the streamed figure is taken first.
    /// </summary>
    public static async Task<IReadOnlyList<string>> ExportRowsAsync(long entries, string folder)
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, "export.jsonl");
        await using (var output = File.Create(path))
        {
            await Appliance.Audit.Export.AuditExport.WriteAsync(output, Chain(entries), Checkpoints(entries), CancellationToken.None);
        }

        using var process = System.Diagnostics.Process.GetCurrentProcess();
        var started = System.Diagnostics.Stopwatch.StartNew();
        var scan = Appliance.Audit.Export.ExportVerifier.Scan(() => File.OpenText(path));
        var (_, verdict) = Appliance.Audit.Export.ExportVerifier.Verify(scan, ["node-1"], key: null, witnesses: true).Single();
        var streamedSeconds = started.Elapsed.TotalSeconds;
        process.Refresh();
        var streamedPeak = process.PeakWorkingSet64 / 1048576;

        started.Restart();
        using (var reader = File.OpenText(path))
        {
            GC.KeepAlive(Appliance.Audit.Export.AuditExport.Read(reader));
        }

        var heldSeconds = started.Elapsed.TotalSeconds;
        process.Refresh();
        var file = new FileInfo(path).Length / 1048576;
        Directory.Delete(folder, recursive: true);
        return
        [
            "| export of | file (MiB) | how | verdict | seconds | peak working set (MiB) |",
            "|---:|---:|---|---|---:|---:|",
            string.Create(CultureInfo.InvariantCulture, $"| {entries:N0} entries | {file:N0} | verified streamed | {(verdict.Ok ? "OK" : verdict.Message)} | {streamedSeconds:F1} | {streamedPeak} |"),
            string.Create(CultureInfo.InvariantCulture, $"| {entries:N0} entries | {file:N0} | read whole (earlier versions), not verified | - | {heldSeconds:F1} | {process.PeakWorkingSet64 / 1048576} |"),
        ];
    }

    private static IEnumerable<AuditEntry> Chain(long entries)
    {
        var previous = CanonicalJson.GenesisHash;
        for (var sequence = 1L; sequence <= entries; sequence++)
        {
            var record = new AuditRecord
            {
                Time = DateTimeOffset.UnixEpoch.AddSeconds(sequence), Kind = AuditKinds.Completed, Roles = ["appliance-user"],
                RequestId = "req-" + sequence.ToString(CultureInfo.InvariantCulture), Username = "ada", Model = "tiny", Status = 200,
            };
            var hash = CanonicalJson.Hash(sequence, "node-1", record, previous);
            yield return new AuditEntry(sequence, "node-1", record, previous, hash);
            previous = hash;
        }
    }

    /// <summary>The checkpoints a writer would have signed (unsigned here: the verifier is given no key).</summary>
    private static List<Checkpoint> Checkpoints(long entries) =>
        [.. Chain(entries).Where(e => e.Sequence % 1000 == 0).Select(e => new Checkpoint(e.Node, e.Sequence, e.Hash, e.Record.Time, "bench", "unsigned"))];
}
