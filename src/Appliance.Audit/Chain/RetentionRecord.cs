using System.Text;

namespace Appliance.Audit.Chain;

/// <summary>
/// A signed statement that a node's entries up to <see cref="ThroughSequence"/> (whose hash was
/// <see cref="ThroughHash"/>) were removed under the retention policy. The chain that remains verifies from there on,
/// and an auditor can see what was removed, when, and that nobody removed more quietly.
/// </summary>
public sealed record RetentionRecord(string Node, long ThroughSequence, string ThroughHash, long RemovedEntries, DateTimeOffset OldestRemaining,
    DateTimeOffset Time, string KeyId, string Signature)
{
    public static byte[] SignedBytes(string node, long through, string hash, long removed, DateTimeOffset oldestRemaining, DateTimeOffset time) =>
        Encoding.UTF8.GetBytes($"appliance-audit-retention-v1\n{node}\n{through}\n{hash}\n{removed}\n{CanonicalJson.Time(oldestRemaining)}\n{CanonicalJson.Time(time)}");
}
