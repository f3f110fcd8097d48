using Appliance.Audit.Chain;
using Appliance.Audit.Stores;

namespace Appliance.Audit;

/// <summary>
/// Removes whole sealed segments: every entry up to the newest checkpoint such that every entry up to it is older than
/// the cutoff. What was removed is kept as a signed retention record, from which the rest of the chain verifies.
/// </summary>
public static class AuditRetention
{
    public static RetentionRecord? Apply(IAuditStore store, CheckpointSigner signer, string node, DateTimeOffset cutoff, DateTimeOffset now)
    {
        var removedBefore = store.Retention(node)?.ThroughSequence ?? 0;

        // Segment by segment from the oldest, while every entry of the segment is older than the cutoff: the time of
        // the checkpoint's own entry is not enough. A node that booted with its clock a year behind (a flat clock
        // battery, before NTP stepped it) stamps that hour's entries a year old; the newest checkpoint among them
        // would otherwise take the months of genuine entries before it along.
        Checkpoint? through = null;
        var segmentStart = removedBefore;
        foreach (var checkpoint in store.Checkpoints(node).Where(c => c.Sequence > removedBefore).OrderBy(c => c.Sequence))
        {
            if (store.NewestTime(node, segmentStart, checkpoint.Sequence) is not { } newest || newest >= cutoff
                || Entry(store, node, checkpoint.Sequence) is null)
            {
                break;
            }

            (through, segmentStart) = (checkpoint, checkpoint.Sequence);
        }

        if (through is null)
        {
            return null;
        }

        var oldestRemaining = Entry(store, node, through.Sequence + 1)?.Record.Time ?? now;
        var record = signer.SignRetention(node, through.Sequence, through.Hash, through.Sequence - removedBefore, oldestRemaining, now);
        store.ApplyRetention(record);
        return record;
    }

    private static AuditEntry? Entry(IAuditStore store, string node, long sequence) =>
        store.Query(node, new AuditQuery { AfterSequence = sequence - 1, Limit = 1 }).FirstOrDefault(e => e.Sequence == sequence);
}
