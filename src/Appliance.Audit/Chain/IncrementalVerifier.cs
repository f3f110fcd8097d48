using System.Collections.Concurrent;
using System.Security.Cryptography;
using Appliance.Audit.Stores;

namespace Appliance.Audit.Chain;

/// <summary>
/// Online verification that does not rescan the whole chain on every call: it remembers, per node, the last signed
/// checkpoint a verification reached, and the next one checks only the entries after it (that they chain to its
/// hash, and the checkpoints that follow). A full verification (the offline command, or full=true) rehashes every
/// entry, which is what finds a row changed before the remembered checkpoint.
/// </summary>
public sealed class IncrementalVerifier
{
    private readonly ConcurrentDictionary<string, VerifiedPoint> _verified = new(StringComparer.Ordinal);

    /// <summary>The nodes whose chains this verifier has reached a signed checkpoint of, and how far.</summary>
    public IReadOnlyDictionary<string, VerifiedPoint> Reached => _verified;

    public ChainVerification Verify(IAuditStore store, string node, ECDsa publicKey, bool full)
    {
        ChainVerification verdict;
        for (var attempt = 1; ; attempt++)
        {
            var retention = store.Retention(node);
            verdict = VerifyOnce(store, node, publicKey, full, retention);

            // The entries are read in pages: a retention run that commits meanwhile removes entries this pass still
            // expected, which would read as a deleted range. Verified again from the new retention record, a chain
            // that retention alone shortened is whole; one that was cut stays broken.
            if (verdict.Ok || attempt == 3 || store.Retention(node)?.ThroughSequence == retention?.ThroughSequence)
            {
                break;
            }
        }

        if (verdict.Ok && verdict.LastCheckpoint is { } reached)
        {
            _verified[node] = reached;
        }
        else if (!verdict.Ok)
        {
            _verified.TryRemove(node, out _);
        }

        return verdict;
    }

    private ChainVerification VerifyOnce(IAuditStore store, string node, ECDsa publicKey, bool full, RetentionRecord? retention)
    {
        var from = full ? null : _verified.GetValueOrDefault(node);
        if (from is not null && retention is not null && from.Sequence < retention.ThroughSequence)
        {
            from = null; // retention removed what was verified: start from its record
        }

        return ChainVerifier.Verify(store.Chain(node, from?.Sequence ?? 0), store.Checkpoints(node), publicKey, retention, from);
    }
}
