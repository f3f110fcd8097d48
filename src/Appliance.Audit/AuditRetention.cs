using Appliance.Audit.Chain;
using Appliance.Audit.Stores;

namespace Appliance.Audit;

/// <summary>
/// Removes whole sealed segments: every entry up to the newest checkpoint whose entry is older than the cutoff. What
/// was removed is kept as a signed retention record, from which the rest of the chain verifies.
/// </summary>
public static class AuditRetention
{
    public static RetentionRecord? Apply(IAuditStore store, CheckpointSigner signer, string node, DateTimeOffset cutoff, DateTimeOffset now)
    {
        var removedBefore = store.Retention(node)?.ThroughSequence ?? 0;
        foreach (var checkpoint in store.Checkpoints(node).Where(c => c.Sequence > removedBefore).OrderByDescending(c => c.Sequence))
        {
            var sealedEntry = Entry(store, node, checkpoint.Sequence);
            if (sealedEntry is null || sealedEntry.Record.Time >= cutoff)
            {
                continue;
            }

            var oldestRemaining = Entry(store, node, checkpoint.Sequence + 1)?.Record.Time ?? now;
            var record = signer.SignRetention(node, checkpoint.Sequence, checkpoint.Hash, checkpoint.Sequence - removedBefore, oldestRemaining, now);
            store.ApplyRetention(record);
            return record;
        }

        return null;
    }

    private static AuditEntry? Entry(IAuditStore store, string node, long sequence) =>
        store.Query(node, new AuditQuery { AfterSequence = sequence - 1, Limit = 1 }).FirstOrDefault(e => e.Sequence == sequence);
}
