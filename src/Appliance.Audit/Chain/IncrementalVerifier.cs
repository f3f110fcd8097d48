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
        var retention = store.Retention(node);
        var from = full ? null : _verified.GetValueOrDefault(node);
        if (from is not null && retention is not null && from.Sequence < retention.ThroughSequence)
        {
            from = null; // retention removed what was verified: start from its record
        }

        var verdict = ChainVerifier.Verify(store.Chain(node, from?.Sequence ?? 0), store.Checkpoints(node), publicKey, retention, from);
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
}
