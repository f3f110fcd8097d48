using System.Security.Cryptography;
using Appliance.Audit.Chain;

namespace Appliance.Audit.Export;

/// <summary>
/// Verifies a JSON Lines export offline (<c>appliance audit verify --file</c>): each chain from its newest retention
/// record, then the chains' signed witnesses of each other. The file is read several times, never held: a first pass
/// notes the checkpoints, retention records, witness entries and which chain each line belongs to, then each chain's
/// entries are streamed through <see cref="ChainVerifier"/> (an export of millions of entries verifies in tens of MB).
/// </summary>
public static class ExportVerifier
{
    /// <summary>The first pass over an export; <paramref name="open"/> must give the same text each time it is called.</summary>
    public static ExportScan Scan(Func<TextReader> open)
    {
        var scan = new ExportScan(open);
        using var reader = open();
        foreach (var (_, line) in AuditExport.Lines(reader))
        {
            scan.Add(line);
        }

        return scan;
    }

    /// <summary>Every node with an entry, checkpoint or retention record in the export, in order.</summary>
    public static IReadOnlyList<string> Nodes(ExportScan scan) => scan.Nodes;

    /// <param name="scan">The export, scanned.</param>
    /// <param name="chains">The chains to verify.</param>
    /// <param name="key">The checkpoint public key (null: only the hashes are checked).</param>
    /// <param name="witnesses">Whether to check the chains' witnesses of each other (when every chain of the file is verified).</param>
    /// <param name="acceptNoEnd">Whether a file without the signed end line (written before exports had one) may pass; nothing then shows it was not cut short.</param>
    public static IReadOnlyList<(string Node, ChainVerification Verdict)> Verify(ExportScan scan, IReadOnlyList<string> chains, ECDsa? key, bool witnesses, bool acceptNoEnd = false)
    {
        // The hashes the witnesses name, collected while the chains stream past (the first line of each, as in a store).
        var named = scan.Witnesses.SelectMany(w => ChainWitness.Read(w.Record) ?? []).Select(c => (c.Node, c.Sequence)).ToHashSet();
        var hashes = new Dictionary<(string, long), string>();
        var verdicts = chains.Select(chain => (chain, Whole(scan, chain, VerifyChain(scan, chain, key, named, hashes), key, acceptNoEnd))).ToList();
        // Each end line, also one that closes no chain verified here: an unsigned one appended to a file says nothing.
        for (var i = 0; key is not null && i < scan.Ends.Count; i++)
        {
            if (!scan.Ends[i].SignedWith(key))
            {
                verdicts.Add(($"(end line {i + 1})", ChainVerification.Broken(0, 0, true, ChainProblem.ForgedCheckpoint, null,
                    "this end line of the export is not signed by the audit key: it was added or changed")));
            }
        }

        if (witnesses)
        {
            // A chain an end line names that the file does not hold at all was cut off whole.
            verdicts.AddRange(scan.Ends.SelectMany(e => e.Chains).Where(c => !chains.Contains(c.Node)).Select(c => (c.Node, ChainVerification.Broken(0, 0, key is not null, ChainProblem.Truncated, null,
                $"the export's signed end line names {c.Entries} entries of this chain through entry {c.LastSequence}; the file holds none: it was cut"))));
        }

        if (!witnesses)
        {
            return verdicts;
        }

        // Every chain in the file: each one's signed witness of the others (ChainWitness). A chain witnessed but not in
        // the file may just not have been exported (GET /audit/export?node=...): only the store can tell it was deleted.
        // Written while the nodes wrote, a file may end a chain before a checkpoint another chain's later witness names.
        return ChainWitness.Check(verdicts,
            (chain, signedThrough) => scan.Witnesses.LastOrDefault(e => e.Node == chain && e.Sequence <= signedThrough),
            (chain, sequence) => hashes.GetValueOrDefault((chain, sequence)),
            chain => scan.NewestRetention(chain)?.ThroughSequence ?? 0,
            missingIsGone: false,
            beyondEnd: (chain, sequence) => sequence > scan.LastSequence(chain));
    }

    /// <summary>
    /// Whether the file holds the whole of what the export wrote of the chain, as its signed end line says: the entries
    /// verify as a chain, yet a file cut at a line boundary is a shorter chain that verifies too.
    /// </summary>
    private static ChainVerification Whole(ExportScan scan, string chain, ChainVerification verdict, ECDsa? key, bool acceptNoEnd)
    {
        if (!verdict.Ok)
        {
            return verdict;
        }

        // The end line that closes the part of the file the chain is in (exports joined one after another each have
        // their own); a part after the last end line has none.
        var parts = scan.Parts(chain);
        if (scan.Ends.Count == 0 || parts.Any(p => p >= scan.Ends.Count))
        {
            if (acceptNoEnd && scan.Ends.Count == 0)
            {
                return verdict with { Message = $"{verdict.Message} (the file has no end line: nothing shows that it was not cut short)" };
            }

            return ChainVerification.Broken(verdict.EntriesChecked, verdict.CheckpointsChecked, verdict.SignaturesChecked, ChainProblem.Truncated, null,
                scan.Ends.Count == 0
                    ? "the export has no signed end line: it was cut short (a download that broke off, a file cut at a line), or it was written before "
                        + "exports were signed at their end (then verify it with --accept-no-end)"
                    : "this chain's part of the file has no signed end line after it: it was cut short");
        }

        if (parts.Count > 1)
        {
            return ChainVerification.Broken(verdict.EntriesChecked, verdict.CheckpointsChecked, verdict.SignaturesChecked, ChainProblem.InsertedOrReordered, null,
                "this chain is in more than one export joined in the file: verify those exports one at a time");
        }

        var end = scan.Ends[parts.Single()];
        if (key is not null && !end.SignedWith(key))
        {
            return ChainVerification.Broken(verdict.EntriesChecked, verdict.CheckpointsChecked, true, ChainProblem.ForgedCheckpoint, null,
                "the export's end line is not signed by the audit key: what it says the file holds cannot be trusted");
        }

        var held = scan.Tally(chain);
        if (end.Chains.FirstOrDefault(c => c.Node == chain) is not { } said)
        {
            return ChainVerification.Broken(verdict.EntriesChecked, verdict.CheckpointsChecked, verdict.SignaturesChecked, ChainProblem.InsertedOrReordered, null,
                "the export's signed end line does not name this chain: it was added to the file afterwards");
        }

        return said == held
            ? verdict
            : ChainVerification.Broken(verdict.EntriesChecked, verdict.CheckpointsChecked, verdict.SignaturesChecked, ChainProblem.Truncated, held.LastSequence + 1,
                $"the export's signed end line says {said.Entries} entries through entry {said.LastSequence} and {said.Checkpoints} checkpoints; "
                + $"the file holds {held.Entries} through entry {held.LastSequence} and {held.Checkpoints}: it was cut");
    }

    /// <summary>
    /// One chain from its newest retention record. An export that a retention run overtook holds entries that run
    /// removed, then the run's record after the entries. Those entries are verified on their own, from the record the
    /// export began with (or the chain's start) and against their checkpoints, so a file cannot pass by carrying a
    /// later genuine record over entries changed by hand; the rest must follow the newest record unbroken.
    /// </summary>
    private static ChainVerification VerifyChain(
        ExportScan scan, string chain, ECDsa? key, HashSet<(string, long)> named, Dictionary<(string, long), string> hashes)
    {
        var retention = scan.NewestRetention(chain);
        var through = retention?.ThroughSequence ?? 0;
        var checkpoints = scan.Checkpoints.Where(c => c.Node == chain).ToList();
        var (removed, lastRemoved) = scan.EntriesUpTo(chain, through);
        if (removed > 0)
        {
            var earlier = scan.Retentions.Where(r => r.Node == chain && r.ThroughSequence < through).MaxBy(r => r.ThroughSequence);
            var before = ChainVerifier.Verify(
                scan.Entries(chain, sequence => sequence <= through, named, hashes), checkpoints.Where(c => c.Sequence <= lastRemoved), key, earlier);
            if (!before.Ok)
            {
                return before with { Message = $"{before.Message} (among the entries exported before a retention run removed them)" };
            }
        }

        var verdict = ChainVerifier.Verify(scan.Entries(chain, sequence => sequence > through, named, hashes), checkpoints, key, retention);
        return verdict.Ok && removed > 0
            ? verdict with { Message = $"{verdict.Message}; the {removed} entries exported before that retention run removed them verified too" }
            : verdict;
    }
}

/// <summary>
/// What the first pass over an export found: its checkpoints, retention records and witness entries (few), and for
/// each line the chain and entry number it holds (12 bytes a line), so that later passes parse only the lines of the
/// chain they verify.
/// </summary>
public sealed class ExportScan
{
    private const int NotAnEntry = -1;

    private readonly Func<TextReader> _open;
    private readonly List<string> _chains = [];
    private readonly Dictionary<string, int> _chainIndex = new(StringComparer.Ordinal);
    private readonly List<int> _lineChain = [];
    private readonly List<long> _lineSequence = [];
    private readonly SortedSet<string> _nodes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _lastSequence = new(StringComparer.Ordinal);
    private readonly Dictionary<int, AuditEntry> _witnessAtLine = [];
    private readonly Dictionary<string, ExportedChain> _tally = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<int>> _parts = new(StringComparer.Ordinal);
    private bool _linesSinceEnd;

    internal ExportScan(Func<TextReader> open) => _open = open;

    internal List<Checkpoint> Checkpoints { get; } = [];

    internal List<RetentionRecord> Retentions { get; } = [];

    /// <summary>Witness entries, in file order.</summary>
    internal List<AuditEntry> Witnesses { get; } = [];

    internal IReadOnlyList<string> Nodes => [.. _nodes];

    /// <summary>The signed end lines, in file order: one per export (files joined one after another have several).</summary>
    internal List<ExportEnd> Ends { get; } = [];

    /// <summary>Which parts of the file (0 before the first end line, 1 after it, ...) hold the chain's lines.</summary>
    internal IReadOnlySet<int> Parts(string chain) => _parts.GetValueOrDefault(chain) ?? [];

    /// <summary>What the file holds of the chain, in the terms of the end line.</summary>
    internal ExportedChain Tally(string chain) => _tally.GetValueOrDefault(chain) ?? new ExportedChain(chain, 0, 0, string.Empty, 0);

    internal void Add(object line)
    {
        if (line is not ExportEnd)
        {
            _linesSinceEnd = true;
        }

        if (line is not ExportEnd && NodeOf(line) is { } node)
        {
            if (!_parts.TryGetValue(node, out var parts))
            {
                _parts[node] = parts = [];
            }

            parts.Add(Ends.Count);
        }

        switch (line)
        {
            case AuditEntry entry:
                if (!_chainIndex.TryGetValue(entry.Node, out var index))
                {
                    index = _chainIndex[entry.Node] = _chains.Count;
                    _chains.Add(entry.Node);
                }

                _lineChain.Add(index);
                _lineSequence.Add(entry.Sequence);
                _nodes.Add(entry.Node);
                _lastSequence[entry.Node] = Math.Max(_lastSequence.GetValueOrDefault(entry.Node), entry.Sequence);
                var counted = Tally(entry.Node);
                _tally[entry.Node] = counted with { Entries = counted.Entries + 1, LastSequence = entry.Sequence, LastHash = entry.Hash };
                if (entry.Record.Kind == AuditKinds.Witness)
                {
                    Witnesses.Add(entry);
                    _witnessAtLine[_lineChain.Count - 1] = entry;
                }

                break;
            case Checkpoint checkpoint:
                Checkpoints.Add(checkpoint);
                var tallied = Tally(checkpoint.Node);
                _tally[checkpoint.Node] = tallied with { Checkpoints = tallied.Checkpoints + 1 };
                _nodes.Add(checkpoint.Node);
                AddOther();
                break;
            case RetentionRecord retention:
                Retentions.Add(retention);
                _nodes.Add(retention.Node);
                AddOther();
                break;
            case ExportEnd end:
                if (!_linesSinceEnd)
                {
                    throw new InvalidDataException($"end line {Ends.Count + 1} of the export closes no lines: it was added to the file");
                }

                Ends.Add(end);
                _linesSinceEnd = false;
                AddOther();
                break;
        }
    }

    internal RetentionRecord? NewestRetention(string chain) => Retentions.Where(r => r.Node == chain).MaxBy(r => r.ThroughSequence);

    /// <summary>The highest entry number of the chain in the file (0: none).</summary>
    internal long LastSequence(string chain) => _lastSequence.GetValueOrDefault(chain);

    /// <summary>How many of the chain's entries are numbered up to <paramref name="through"/>, and the number of the last of them in file order.</summary>
    internal (int Count, long Last) EntriesUpTo(string chain, long through)
    {
        var upTo = Lines(chain).Where(i => _lineSequence[i] <= through).ToList();
        return (upTo.Count, upTo.Count == 0 ? 0 : _lineSequence[upTo[^1]]);
    }

    /// <summary>
    /// The chain's entries whose number <paramref name="which"/> accepts, read again from the file in its order; the
    /// hashes of entries in <paramref name="named"/> are noted on the way.
    /// </summary>
    internal IEnumerable<AuditEntry> Entries(string chain, Func<long, bool> which, HashSet<(string, long)> named, Dictionary<(string, long), string> hashes)
    {
        if (!_chainIndex.TryGetValue(chain, out var index))
        {
            yield break;
        }

        using var reader = _open();
        var line = 0;
        var number = 0;
        for (var text = reader.ReadLine(); text is not null; text = reader.ReadLine())
        {
            number++;
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }

            if (line >= _lineChain.Count)
            {
                throw Changed(number);
            }

            if (_lineChain[line] != index || !which(_lineSequence[line]))
            {
                line++;
                continue;
            }

            // The witnesses' claims come from the first pass: the line verified now must be the one they were read from.
            if (AuditExport.ParseLine(text, number) is not AuditEntry entry || entry.Node != chain || entry.Sequence != _lineSequence[line]
                || (_witnessAtLine.TryGetValue(line, out var witness)
                    && (witness.Hash != entry.Hash || witness.PreviousHash != entry.PreviousHash || witness.Record.Detail != entry.Record.Detail)))
            {
                throw Changed(number);
            }

            line++;
            if (named.Contains((entry.Node, entry.Sequence)))
            {
                hashes.TryAdd((entry.Node, entry.Sequence), entry.Hash);
            }

            yield return entry;
        }

        if (line != _lineChain.Count)
        {
            throw Changed(number);
        }
    }

    private static string? NodeOf(object line) => line switch
    {
        AuditEntry entry => entry.Node,
        Checkpoint checkpoint => checkpoint.Node,
        RetentionRecord retention => retention.Node,
        _ => null,
    };

    private IEnumerable<int> Lines(string chain) =>
        _chainIndex.TryGetValue(chain, out var index) ? Enumerable.Range(0, _lineChain.Count).Where(i => _lineChain[i] == index) : [];

    private void AddOther()
    {
        _lineChain.Add(NotAnEntry);
        _lineSequence.Add(0);
    }

    private static InvalidDataException Changed(int number) =>
        new($"the export changed while it was verified (line {number} is not what the first pass read); verify a copy that nothing writes to");
}
