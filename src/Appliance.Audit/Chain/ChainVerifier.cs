using System.Security.Cryptography;

namespace Appliance.Audit.Chain;

/// <summary>What kind of damage verification found.</summary>
public enum ChainProblem
{
    None,
    Modified,
    Deleted,
    InsertedOrReordered,
    Truncated,
    ForgedCheckpoint,
}

/// <summary>An entry verification reached: later entries are checked from here (its hash is what they must chain to).</summary>
public sealed record VerifiedPoint(long Sequence, string Hash);

/// <summary>The verdict: OK, or the first broken entry (or checkpoint) and what is wrong with it.</summary>
public sealed record ChainVerification(bool Ok, long EntriesChecked, int CheckpointsChecked, bool SignaturesChecked, ChainProblem Problem, long? FirstBrokenSequence, string Message)
{
    /// <summary>The last signed checkpoint this verification checked, where a later one may start.</summary>
    public VerifiedPoint? LastCheckpoint { get; init; }

    /// <summary>Where this verification started (null: at the beginning of the chain, or after retention).</summary>
    public VerifiedPoint? From { get; init; }

    public static ChainVerification Broken(long checkedCount, int checkpoints, bool signatures, ChainProblem problem, long? sequence, string message) =>
        new(false, checkedCount, checkpoints, signatures, problem, sequence, message);
}

/// <summary>
/// Checks one node's chain offline: each entry's hash over its canonical form, the sequence without gaps, each link to
/// the previous hash, and every checkpoint's signature (with the auditor's public key) against the entry it names.
/// </summary>
public static class ChainVerifier
{
    /// <param name="from">
    /// A signed checkpoint an earlier verification reached: the entries after it are checked to chain to its hash
    /// (incremental). Null checks the whole chain.
    /// </param>
    public static ChainVerification Verify(IEnumerable<AuditEntry> entries, IEnumerable<Checkpoint> checkpoints, ECDsa? publicKey, RetentionRecord? retention = null, VerifiedPoint? from = null)
    {
        var hashes = new Dictionary<long, string>();
        var expected = 1L;
        var previous = CanonicalJson.GenesisHash;
        var count = 0L;
        if (retention is not null)
        {
            // Entries up to the retention record were removed on purpose; its signature vouches for where the rest begins.
            if (publicKey is not null && !RetentionValid(retention, publicKey))
            {
                return ChainVerification.Broken(0, 0, true, ChainProblem.ForgedCheckpoint, retention.ThroughSequence,
                    $"the retention record for entries up to {retention.ThroughSequence} is not signed by the audit key");
            }

            (expected, previous) = (retention.ThroughSequence + 1, retention.ThroughHash);
        }

        if (from is not null && from.Sequence >= expected - 1)
        {
            (expected, previous) = (from.Sequence + 1, from.Hash);
        }

        var startedAfter = expected - 1;

        // Only the hashes the checkpoints name are kept: a chain of hundreds of millions of entries verifies in the
        // memory of its checkpoints (one per segment), not of its entries.
        var signed = checkpoints.Where(c => c.Sequence > startedAfter).OrderBy(c => c.Sequence).ToList();
        var named = signed.Select(c => c.Sequence).ToHashSet();

        foreach (var entry in entries)
        {
            if (CanonicalJson.Hash(entry.Sequence, entry.Node, entry.Record, entry.PreviousHash) != entry.Hash)
            {
                // An intact entry under a shifted number was renumbered: entries were inserted or removed before it.
                return OriginalSequence(entry) is { } original
                    ? ChainVerification.Broken(count, 0, publicKey is not null, ChainProblem.InsertedOrReordered, entry.Sequence,
                        $"entry {entry.Sequence} was entry {original}: entries were inserted or removed before it")
                    : ChainVerification.Broken(count, 0, publicKey is not null, ChainProblem.Modified, entry.Sequence,
                        $"entry {entry.Sequence} was modified: its content does not match its hash");
            }

            if (entry.Sequence > expected)
            {
                return ChainVerification.Broken(count, 0, publicKey is not null, ChainProblem.Deleted, expected,
                    expected == entry.Sequence - 1 ? $"entry {expected} is missing" : $"entries {expected} to {entry.Sequence - 1} are missing");
            }

            if (entry.Sequence < expected || entry.PreviousHash != previous)
            {
                return ChainVerification.Broken(count, 0, publicKey is not null, ChainProblem.InsertedOrReordered, entry.Sequence,
                    $"entry {entry.Sequence} does not follow entry {expected - 1}: an entry was inserted, removed or moved here");
            }

            if (named.Contains(entry.Sequence))
            {
                hashes[entry.Sequence] = entry.Hash;
            }

            previous = entry.Hash;
            expected = entry.Sequence + 1;
            count++;
        }

        var checkedCheckpoints = 0;
        VerifiedPoint? lastCheckpoint = null;
        foreach (var checkpoint in signed)
        {
            if (publicKey is not null && !SignatureValid(checkpoint, publicKey))
            {
                var ours = CheckpointSigner.KeyIdOf(publicKey);
                return ChainVerification.Broken(count, checkedCheckpoints, true, ChainProblem.ForgedCheckpoint, checkpoint.Sequence,
                    checkpoint.KeyId == ours
                        ? $"the checkpoint at entry {checkpoint.Sequence} is not signed by the audit key"
                        : $"the checkpoint at entry {checkpoint.Sequence} names key {checkpoint.KeyId}, not the audit key {ours}: a forgery, or a node "
                            + "with a checkpoint key of its own (give every node of a cluster the same key, or verify this chain with its node's public key)");
            }

            if (!hashes.TryGetValue(checkpoint.Sequence, out var hash))
            {
                return ChainVerification.Broken(count, checkedCheckpoints, publicKey is not null, ChainProblem.Truncated, expected,
                    $"a checkpoint vouches for entry {checkpoint.Sequence}, but the chain ends at entry {expected - 1}: entries were cut off");
            }

            if (hash != checkpoint.Hash)
            {
                return ChainVerification.Broken(count, checkedCheckpoints, publicKey is not null, ChainProblem.Modified, checkpoint.Sequence,
                    $"the chain up to entry {checkpoint.Sequence} was rewritten after the checkpoint signed it");
            }

            checkedCheckpoints++;
            lastCheckpoint = new VerifiedPoint(checkpoint.Sequence, checkpoint.Hash);
        }

        var signatures = publicKey is null ? " (checkpoint signatures not checked: no public key given)" : string.Empty;
        var removed = retention is null ? string.Empty : $", entries 1 to {retention.ThroughSequence} removed by retention on {CanonicalJson.Time(retention.Time)}";
        var incremental = from is not null && startedAfter == from.Sequence ? $" after entry {from.Sequence} (verified earlier)" : string.Empty;
        return new ChainVerification(true, count, checkedCheckpoints, publicKey is not null, ChainProblem.None, null,
            $"OK: {count} entries{incremental}, {checkedCheckpoints} checkpoints{removed}{signatures}")
        {
            LastCheckpoint = lastCheckpoint ?? (incremental.Length > 0 ? from : null),
            From = incremental.Length > 0 ? from : null,
        };
    }

    private static long? OriginalSequence(AuditEntry entry)
    {
        for (var shift = -3; shift <= 3; shift++)
        {
            if (shift != 0 && entry.Sequence + shift > 0 && CanonicalJson.Hash(entry.Sequence + shift, entry.Node, entry.Record, entry.PreviousHash) == entry.Hash)
            {
                return entry.Sequence + shift;
            }
        }

        return null;
    }

    private static bool RetentionValid(RetentionRecord r, ECDsa publicKey) =>
        Signed(r.KeyId, RetentionRecord.SignedBytes(r.Node, r.ThroughSequence, r.ThroughHash, r.RemovedEntries, r.OldestRemaining, r.Time), r.Signature, publicKey);

    private static bool SignatureValid(Checkpoint c, ECDsa publicKey) =>
        Signed(c.KeyId, Checkpoint.SignedBytes(c.Node, c.Sequence, c.Hash, c.Time), c.Signature, publicKey);

    /// <summary>Made with the auditor's key (same key id) over exactly these bytes; a malformed signature is a forgery.</summary>
    internal static bool Signed(string keyId, byte[] signedBytes, string signature, ECDsa publicKey)
    {
        try
        {
            return keyId == CheckpointSigner.KeyIdOf(publicKey)
                && publicKey.VerifyData(signedBytes, Convert.FromBase64String(signature), HashAlgorithmName.SHA256);
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
