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
