using System.Security.Cryptography;
using Appliance.Audit.Chain;

namespace Appliance.Audit.Export;

/// <summary>
/// Verifies a JSON Lines export offline (<c>appliance audit verify --file</c>): each chain from its newest retention
/// record, then the chains' signed witnesses of each other.
/// </summary>
public static class ExportVerifier
{
    /// <summary>Every node with an entry, checkpoint or retention record in the export, in order.</summary>
    public static IReadOnlyList<string> Nodes(ExportContents export) =>
        [.. export.Entries.Select(e => e.Node).Concat(export.Checkpoints.Select(c => c.Node)).Concat(export.Retentions.Select(r => r.Node))
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    /// <param name="chains">The chains to verify.</param>
    /// <param name="witnesses">Whether to check the chains' witnesses of each other (when every chain of the file is verified).</param>
    public static IReadOnlyList<(string Node, ChainVerification Verdict)> Verify(ExportContents export, IReadOnlyList<string> chains, ECDsa? key, bool witnesses)
    {
        var verdicts = chains.Select(chain => (chain, VerifyChain(export, chain, key))).ToList();
        if (!witnesses)
        {
            return verdicts;
        }

        // Every chain in the file: each one's signed witness of the others (ChainWitness). A chain witnessed but not in
        // the file may just not have been exported (GET /audit/export?node=...): only the store can tell it was deleted.
        // Written while the nodes wrote, a file may end a chain before a checkpoint another chain's later witness names.
        var entries = export.Entries;
        var hashes = new Dictionary<(string, long), string>();
        foreach (var entry in entries)
        {
            hashes.TryAdd((entry.Node, entry.Sequence), entry.Hash); // a duplicated entry is the chain verdict's finding
        }

        var ends = entries.GroupBy(e => e.Node).ToDictionary(g => g.Key, g => g.Max(e => e.Sequence), StringComparer.Ordinal);
        return ChainWitness.Check(verdicts,
            (chain, signedThrough) => entries.LastOrDefault(e => e.Node == chain && e.Sequence <= signedThrough && e.Record.Kind == AuditKinds.Witness),
            (chain, sequence) => hashes.GetValueOrDefault((chain, sequence)),
            chain => NewestRetention(export, chain)?.ThroughSequence ?? 0,
            missingIsGone: false,
            beyondEnd: (chain, sequence) => sequence > ends.GetValueOrDefault(chain));
    }

    /// <summary>
    /// One chain from its newest retention record. An export that a retention run overtook holds entries that run
    /// removed, then the run's record after the entries. Those entries are verified on their own, from the record the
    /// export began with (or the chain's start) and against their checkpoints, so a file cannot pass by carrying a
    /// later genuine record over entries changed by hand; the rest must follow the newest record unbroken.
    /// </summary>
    private static ChainVerification VerifyChain(ExportContents export, string chain, ECDsa? key)
    {
        var retention = NewestRetention(export, chain);
        var through = retention?.ThroughSequence ?? 0;
        var checkpoints = export.Checkpoints.Where(c => c.Node == chain).ToList();
        var removed = export.Entries.Where(e => e.Node == chain && e.Sequence <= through).ToList();
        if (removed.Count > 0)
        {
            var earlier = export.Retentions.Where(r => r.Node == chain && r.ThroughSequence < through).MaxBy(r => r.ThroughSequence);
            var last = removed[^1].Sequence;
            var before = ChainVerifier.Verify(removed, checkpoints.Where(c => c.Sequence <= last), key, earlier);
            if (!before.Ok)
            {
                return before with { Message = $"{before.Message} (among the entries exported before a retention run removed them)" };
            }
        }

        var verdict = ChainVerifier.Verify(export.Entries.Where(e => e.Node == chain && e.Sequence > through), checkpoints, key, retention);
        return verdict.Ok && removed.Count > 0
            ? verdict with { Message = $"{verdict.Message}; the {removed.Count} entries exported before that retention run removed them verified too" }
            : verdict;
    }

    private static RetentionRecord? NewestRetention(ExportContents export, string chain) =>
        export.Retentions.Where(r => r.Node == chain).MaxBy(r => r.ThroughSequence);
}

/// <summary>What an export file holds, as <see cref="AuditExport.Read"/> reads it.</summary>
public sealed record ExportContents(List<AuditEntry> Entries, List<Checkpoint> Checkpoints, List<RetentionRecord> Retentions);
