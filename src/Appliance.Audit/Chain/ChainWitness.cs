using System.Text.Json;
using Appliance.Audit.Stores;

namespace Appliance.Audit.Chain;

/// <summary>Another chain's signed checkpoint, as a witness entry recorded it.</summary>
public sealed record WitnessedCheckpoint(string Node, long Sequence, string Hash);

/// <summary>
/// Cross-node witnesses. A chain's own checkpoints prove it was not changed or cut short only while they are there:
/// whoever can delete a whole chain (entries, checkpoints, retention record) from the shared database, or its tail
/// with the checkpoints over it, leaves nothing its own verification would miss. So with several nodes on one store,
/// each node's writer records, when it signs a checkpoint and the others' latest checkpoints moved since it last did,
/// an <see cref="AuditKinds.Witness"/> entry naming them (node, entry, hash), which the checkpoint it signs then covers.
/// A witness carries the earlier ones forward (no chain dropped, none named at an earlier entry), so verifying the
/// whole set checks every chain's latest signed witness against the chains it names.
/// </summary>
public static class ChainWitness
{
    /// <summary>The witness entry's detail: the other chains' checkpoints, as a JSON array.</summary>
    public static string Detail(IEnumerable<WitnessedCheckpoint> others) =>
        JsonSerializer.Serialize(others.Select(c => new Dictionary<string, object> { ["node"] = c.Node, ["sequence"] = c.Sequence, ["hash"] = c.Hash }));

    /// <summary>The checkpoints a witness entry names; null for another kind of entry or a detail that is no witness list.</summary>
    public static IReadOnlyList<WitnessedCheckpoint>? Read(AuditRecord record)
    {
        if (record.Kind != AuditKinds.Witness || record.Detail is null)
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(record.Detail);
            return [.. document.RootElement.EnumerateArray().Select(item => new WitnessedCheckpoint(
                item.GetProperty("node").GetString()!, item.GetProperty("sequence").GetInt64(), item.GetProperty("hash").GetString()!))];
        }
        catch (Exception exception) when (exception is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// The verdicts of every chain of a store, with what the witnesses show. Only witnesses a chain that verified
    /// signed are taken (an entry after its last checkpoint could have been appended by anyone).
    /// </summary>
    public static IReadOnlyList<(string Node, ChainVerification Verdict)> Check(IAuditStore store, IReadOnlyList<(string Node, ChainVerification Verdict)> verdicts) =>
        Check(verdicts, store.LatestWitness,
            (node, sequence) => sequence < 1 ? null : store.Query(node, new AuditQuery { AfterSequence = sequence - 1, Limit = 1 }).FirstOrDefault(e => e.Sequence == sequence)?.Hash,
            node => store.Retention(node)?.ThroughSequence ?? 0,
            missingIsGone: true,
            stillMissing: node => !store.Nodes().Contains(node, StringComparer.Ordinal)); // a node that joined while the set was read is no loss

    /// <param name="latestWitness">A chain's last witness entry at or before the given sequence, or null.</param>
    /// <param name="hashOf">The hash of a chain's entry, or null when the entry is not there.</param>
    /// <param name="retainedThrough">The last entry of a chain that retention removed on purpose (0: none).</param>
    /// <param name="beyondEnd">
    /// Whether an entry lies past what the source holds of its chain (an export written while the nodes were writing,
    /// one chain after another: a later witness may name a checkpoint the file has not got); such an entry is no finding.
    /// </param>
    /// <param name="stillMissing">Asked again before a chain absent from the verdicts is reported gone.</param>
    /// <param name="missingIsGone">
    /// Whether a witnessed chain that is not among <paramref name="verdicts"/> was deleted (a store holds every chain)
    /// or may simply not be there (an export of some nodes only: such a chain is left alone).
    /// </param>
    public static IReadOnlyList<(string Node, ChainVerification Verdict)> Check(
        IReadOnlyList<(string Node, ChainVerification Verdict)> verdicts, Func<string, long, AuditEntry?> latestWitness, Func<string, long, string?> hashOf,
        Func<string, long> retainedThrough, bool missingIsGone, Func<string, long, bool>? beyondEnd = null, Func<string, bool>? stillMissing = null)
    {
        var result = verdicts.ToList();
        var present = verdicts.Select(v => v.Node).ToHashSet(StringComparer.Ordinal);
        foreach (var (witness, verdict) in verdicts)
        {
            if (!verdict.Ok || verdict.LastCheckpoint is not { } signed || latestWitness(witness, signed.Sequence) is not { } entry || Read(entry.Record) is not { } seen)
            {
                continue;
            }

            foreach (var checkpoint in seen.Where(c => c.Node != witness))
            {
                var index = result.FindIndex(v => v.Node == checkpoint.Node);
                if (index >= 0 && !result[index].Verdict.Ok)
                {
                    continue; // the first problem found stands
                }

                var by = $"node {witness}'s signed entry {entry.Sequence} witnessed its checkpoint at entry {checkpoint.Sequence}";
                ChainVerification? broken = null;
                if (!present.Contains(checkpoint.Node) && (!missingIsGone || stillMissing?.Invoke(checkpoint.Node) == false))
                {
                    continue;
                }

                if (!present.Contains(checkpoint.Node))
                {
                    broken = ChainVerification.Broken(0, 0, true, ChainProblem.Truncated, 1, $"the chain of node {checkpoint.Node} is gone from the store: {by}");
                }
                else if (hashOf(checkpoint.Node, checkpoint.Sequence) is var hash
                    && (hash is not null || (retainedThrough(checkpoint.Node) < checkpoint.Sequence && beyondEnd?.Invoke(checkpoint.Node, checkpoint.Sequence) != true)))
                {
                    // The hash before the retention record: retention committing in between would otherwise look like a cut.
                    broken = hash is null
                        ? result[index].Verdict with { Ok = false, Problem = ChainProblem.Truncated, FirstBrokenSequence = checkpoint.Sequence, Message = $"entry {checkpoint.Sequence} is gone, but {by}: entries were cut off with their checkpoints" }
                        : hash != checkpoint.Hash
                            ? result[index].Verdict with { Ok = false, Problem = ChainProblem.Modified, FirstBrokenSequence = checkpoint.Sequence, Message = $"entry {checkpoint.Sequence} is not the one {by}: the chain was rewritten" }
                            : null;
                }

                if (broken is null)
                {
                    continue;
                }

                if (index >= 0)
                {
                    result[index] = (checkpoint.Node, broken);
                }
                else
                {
                    result.Add((checkpoint.Node, broken));
                    present.Add(checkpoint.Node); // reported once, however many witnesses name it
                }
            }
        }

        return [.. result.OrderBy(v => v.Node, StringComparer.Ordinal)];
    }
}
