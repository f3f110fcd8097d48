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
/// Verifying the whole set checks every chain's latest signed witness against the chains it names.
/// </summary>
public static class ChainWitness
{
    /// <summary>The witness entry's detail: the other chains' checkpoints, as a JSON array.</summary>
    public static string Detail(IEnumerable<Checkpoint> others) =>
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
        Check(verdicts, (node, signedThrough) => store.Query(node, new AuditQuery { Kind = AuditKinds.Witness, NewestFirst = true, BeforeSequence = signedThrough + 1, Limit = 1 }).FirstOrDefault(),
            (node, sequence) => sequence < 1 ? null : store.Query(node, new AuditQuery { AfterSequence = sequence - 1, Limit = 1 }).FirstOrDefault(e => e.Sequence == sequence)?.Hash,
            node => store.Retention(node)?.ThroughSequence ?? 0);

    /// <param name="latestWitness">A chain's last witness entry at or before the given sequence, or null.</param>
    /// <param name="hashOf">The hash of a chain's entry, or null when the entry is not there.</param>
    /// <param name="retainedThrough">The last entry of a chain that retention removed on purpose (0: none).</param>
    public static IReadOnlyList<(string Node, ChainVerification Verdict)> Check(
        IReadOnlyList<(string Node, ChainVerification Verdict)> verdicts, Func<string, long, AuditEntry?> latestWitness, Func<string, long, string?> hashOf, Func<string, long> retainedThrough)
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
                if (!present.Contains(checkpoint.Node))
                {
                    broken = ChainVerification.Broken(0, 0, true, ChainProblem.Truncated, 1, $"the chain of node {checkpoint.Node} is gone from the store: {by}");
                }
                else if (retainedThrough(checkpoint.Node) < checkpoint.Sequence)
                {
                    var hash = hashOf(checkpoint.Node, checkpoint.Sequence);
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
