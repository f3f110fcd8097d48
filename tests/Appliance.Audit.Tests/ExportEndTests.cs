using Appliance.Audit.Chain;
using Appliance.Audit.Export;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Audit.Tests;

/// <summary>
/// An export ends with a line signed with the audit key saying what each chain's part holds. A download that broke off
/// answers 200 all the same, and a file cut at a line boundary is a shorter chain that verifies: the end line is what
/// shows that nothing was cut, from the end of a chain or a whole chain.
/// </summary>
public sealed class ExportEndTests
{
    [Fact]
    public async Task A_file_cut_anywhere_is_found_and_a_whole_one_verifies()
    {
        await using var audit = new AuditChainFixture(new AuditLogOptions { CheckpointEvery = 10, MaxBatch = 1 });
        await using (var other = new AuditLog(audit.Store, audit.Signer, "node-2", TimeProvider.System, new AuditLogOptions { CheckpointEvery = 10, MaxBatch = 1 }, NullLogger<AuditLog>.Instance))
        {
            foreach (var i in Enumerable.Range(1, 25))
            {
                await audit.Log.RecordAsync(AuditChainFixture.Record(i));
                await other.RecordAsync(AuditChainFixture.Record(100 + i));
            }
        }

        await audit.CloseLogAsync();
        using var buffer = new MemoryStream();
        await AuditExport.WriteAllAsync(buffer, audit.Store, ["node-1", "node-2"], audit.Signer, TimeProvider.System, CancellationToken.None);
        var lines = System.Text.Encoding.UTF8.GetString(buffer.ToArray()).TrimEnd('\n').Split('\n');
        Assert.StartsWith("{\"end\":", lines[^1], StringComparison.Ordinal);

        Assert.All(Verify(lines, audit), v => Assert.True(v.Verdict.Ok, v.Verdict.Message));

        // Cut short at a line boundary: the end line went with the rest.
        var cut = Verify(lines[..(lines.Length / 3)], audit);
        Assert.All(cut, v => Assert.Equal((false, ChainProblem.Truncated), (v.Verdict.Ok, v.Verdict.Problem)));
        Assert.Contains("no signed end line", cut[0].Verdict.Message, StringComparison.Ordinal);
        Assert.True(Assert.Single(Verify(lines[..(lines.Length / 3)], audit, acceptNoEnd: true)).Verdict.Ok); // written before end lines: said, not refused

        // Node 1's last five entries removed with the checkpoints that vouch for them (the chain alone then verifies as
        // a shorter one), the end line kept.
        var node1Entries = Enumerable.Range(0, lines.Length).Where(i => IsEntryOf(lines[i], "node-1")).ToList();
        var kept = Sequence(lines[node1Entries[^6]]);
        var dropped = node1Entries[^5..].Concat(Enumerable.Range(0, lines.Length).Where(i =>
            lines[i].StartsWith("{\"checkpoint\":", StringComparison.Ordinal) && lines[i].Contains("\"node\":\"node-1\"", StringComparison.Ordinal)
            && System.Text.Json.JsonDocument.Parse(lines[i]).RootElement.GetProperty("checkpoint").GetProperty("seq").GetInt64() > kept)).ToHashSet();
        var shorter = lines.Where((_, i) => !dropped.Contains(i)).ToArray();
        Assert.True(Verify(shorter, audit, acceptNoEnd: true, withEnd: false).Single(v => v.Node == "node-1").Verdict.Ok); // what the end line is for
        var node1 = Verify(shorter, audit).Single(v => v.Node == "node-1").Verdict;
        Assert.Equal((false, ChainProblem.Truncated, kept + 1), (node1.Ok, node1.Problem, node1.FirstBrokenSequence));
        Assert.Contains($"says {node1Entries.Count} entries through entry {kept + 5}", node1.Message, StringComparison.Ordinal);

        // A whole chain left out, end line kept.
        var withoutNode2 = lines.Where(l => !l.Contains("\"node\":\"node-2\"", StringComparison.Ordinal) || l.StartsWith("{\"end\":", StringComparison.Ordinal)).ToArray();
        var node2 = Verify(withoutNode2, audit).Single(v => v.Node == "node-2").Verdict;
        Assert.Equal((false, ChainProblem.Truncated), (node2.Ok, node2.Problem));

        // The end line rewritten to match a cut file: its signature gives it away.
        var forged = shorter.ToArray();
        forged[^1] = forged[^1].Replace($"\"entries\":{node1Entries.Count}", $"\"entries\":{node1Entries.Count - 5}", StringComparison.Ordinal);
        Assert.NotEqual(shorter[^1], forged[^1]);
        Assert.Equal(ChainProblem.ForgedCheckpoint, Verify(forged, audit).First(v => v.Node == "node-1").Verdict.Problem);

        // An end line added after the real one: unsigned, or closing nothing.
        var appended = forged[^1];
        Assert.Throws<InvalidDataException>(() => Verify([.. lines, lines[^1]], audit));
        Assert.Contains(Verify([.. lines[..^1], appended], audit), v => v.Node == "(end line 1)" && v.Verdict.Problem == ChainProblem.ForgedCheckpoint);

        // A line after the end line was added afterwards.
        Assert.False(Verify([.. lines, lines[0]], audit).Single(v => v.Node == "node-1").Verdict.Ok);

        // Exports of one node each, joined one after another: each part has its own end line.
        var joined = new List<string>();
        foreach (var node in new[] { "node-1", "node-2" })
        {
            using var one = new MemoryStream();
            await AuditExport.WriteAllAsync(one, audit.Store, [node], audit.Signer, TimeProvider.System, CancellationToken.None);
            joined.AddRange(System.Text.Encoding.UTF8.GetString(one.ToArray()).TrimEnd('\n').Split('\n'));
        }

        Assert.All(Verify([.. joined], audit), v => Assert.True(v.Verdict.Ok, v.Verdict.Message));
        var secondCut = Verify([.. joined.Take(joined.Count - 3)], audit); // the second export cut short
        Assert.True(secondCut.Single(v => v.Node == "node-1").Verdict.Ok);
        Assert.Equal(ChainProblem.Truncated, secondCut.Single(v => v.Node == "node-2").Verdict.Problem);
    }

    private static bool IsEntryOf(string line, string node) =>
        line.StartsWith("{\"seq\":", StringComparison.Ordinal) && line.Contains($"\"node\":\"{node}\"", StringComparison.Ordinal);

    private static long Sequence(string line) => System.Text.Json.JsonDocument.Parse(line).RootElement.GetProperty("seq").GetInt64();

    private static IReadOnlyList<(string Node, ChainVerification Verdict)> Verify(string[] lines, AuditChainFixture audit, bool acceptNoEnd = false, bool withEnd = true)
    {
        var text = string.Join('\n', withEnd ? lines : lines.Where(l => !l.StartsWith("{\"end\":", StringComparison.Ordinal))) + "\n";
        var scan = ExportVerifier.Scan(() => new StringReader(text));
        return ExportVerifier.Verify(scan, ExportVerifier.Nodes(scan), audit.PublicKey(), witnesses: true, acceptNoEnd);
    }
}
