using Appliance.Audit.Chain;
using Appliance.Audit.Stores;

namespace Appliance.Audit;

/// <summary>
/// Removes whole sealed segments: every entry up to the newest checkpoint such that every entry up to it is older than
/// the cutoff. What was removed is kept as a signed retention record, from which the rest of the chain verifies.
/// </summary>
public static class AuditRetention
{
    /// <summary>
    /// The most entries one step removes (whole segments, so a little more): a first run on years of entries would
    /// otherwise be one transaction that holds the writer (SQLite), outlasts the command timeout (PostgreSQL) or fills
    /// the disk with its write-ahead log, and is rolled back to start again an hour later.
    /// </summary>
    public const long DefaultStepEntries = 50_000;

    /// <summary>
    /// Steps on a chain no node writes are smaller: its lock is held meanwhile, and a node started again with that id
    /// waits for it.
    /// </summary>
    public const long IdleStepEntries = 10_000;

    /// <summary>Removes the oldest segments older than <paramref name="cutoff"/>, up to about <paramref name="maxEntries"/> entries; null when none is due.</summary>
    public static RetentionRecord? Apply(IAuditStore store, CheckpointSigner signer, string node, DateTimeOffset cutoff, DateTimeOffset now, long maxEntries = DefaultStepEntries)
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
            if (through.Sequence - removedBefore >= maxEntries)
            {
                break; // the rest in the next step
            }
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

    /// <summary>
    /// Retention for the chains no node writes any more: a node retired (its chain stays in the database) or given
    /// another id. A chain is taken up when its newest entry is older than the cutoff (idle for the whole retention
    /// period) and its writer lock is free; each step holds the lock only while it runs. Without this, their entries
    /// (usernames, addresses, sealed prompts) were kept for ever. Signed with this node's key, the cluster's.
    /// </summary>
    public static IEnumerable<(string Chain, RetentionRecord Record)> IdleChainSteps(IAuditStore store, CheckpointSigner signer, string ownNode, DateTimeOffset cutoff, DateTimeOffset now)
    {
        foreach (var chain in store.Nodes().Where(n => n != ownNode))
        {
            var removed = store.Retention(chain)?.ThroughSequence ?? 0;
            if (store.NewestTime(chain, removed, long.MaxValue) is not { } newest || newest >= cutoff)
            {
                continue;
            }

            while (true)
            {
                RetentionRecord? record;
                using (var claim = store.TryClaimIdleChain(chain))
                {
                    if (claim is null)
                    {
                        break; // a node writes it after all (restarted with that id): its own retention applies
                    }

                    record = Apply(store, signer, chain, cutoff, now, IdleStepEntries);
                }

                if (record is null)
                {
                    break;
                }

                yield return (chain, record);
            }
        }
    }

    private static AuditEntry? Entry(IAuditStore store, string node, long sequence) =>
        store.Query(node, new AuditQuery { AfterSequence = sequence - 1, Limit = 1 }).FirstOrDefault(e => e.Sequence == sequence);
}
