using System.Security.Cryptography;
using Appliance.Audit.Chain;
using Appliance.Audit.Stores;

namespace Appliance.Audit.Cluster;

/// <summary>One page of entries from one or several chains, and the cursor for the next page (null at the end).</summary>
public sealed record AuditPage(IReadOnlyList<AuditEntry> Entries, AuditCursor? Next);

/// <summary>One node's chain and what verifying it found.</summary>
public sealed record ChainVerdict(string Node, ChainVerification Verification);

/// <summary>
/// The audit log as an auditor sees it through any node: every chain the store holds (all the nodes sharing a
/// PostgreSQL database; the node's own with SQLite), or one of them. Entries of several chains are interleaved by
/// time, each chain still in its own sequence order.
/// </summary>
public sealed class ClusterAuditView(IAuditStore store)
{
    /// <summary>The chains in scope: <paramref name="node"/> alone when given, else every chain in the store.</summary>
    public IReadOnlyList<string> Chains(string? node) => node is null ? store.Nodes() : [node];

    /// <summary>
    /// A page of matching entries. Each chain is read from the cursor's position for it (its sequence order), and
    /// the chains' pages are merged by time (oldest first, or newest first with <see cref="AuditQuery.NewestFirst"/>);
    /// ties go by node name. The query's own sequence bounds are ignored: the cursor carries them per chain.
    /// </summary>
    public AuditPage Page(AuditQuery query, string? node, AuditCursor? cursor)
    {
        cursor ??= new AuditCursor(query.NewestFirst);
        if (cursor.NewestFirst != query.NewestFirst)
        {
            throw new ArgumentException("the cursor was made for the other paging direction", nameof(cursor));
        }

        var heads = new List<Queue<AuditEntry>>();
        foreach (var chain in Chains(node))
        {
            var position = cursor.PositionOf(chain);
            var perChain = query with
            {
                AfterSequence = query.NewestFirst ? 0 : position ?? 0,
                BeforeSequence = query.NewestFirst ? position : null,
            };
            var entries = store.Query(chain, perChain);
            if (entries.Count > 0)
            {
                heads.Add(new Queue<AuditEntry>(entries));
            }
        }

        var page = new List<AuditEntry>(query.Limit);
        var next = cursor;
        while (page.Count < query.Limit && heads.Count > 0)
        {
            var pick = heads[0];
            foreach (var candidate in heads.Skip(1))
            {
                if (Before(candidate.Peek(), pick.Peek(), query.NewestFirst))
                {
                    pick = candidate;
                }
            }

            var entry = pick.Dequeue();
            page.Add(entry);
            next = next.With(entry.Node, entry.Sequence);
            if (pick.Count == 0)
            {
                heads.Remove(pick);
            }
        }

        return new AuditPage(page, page.Count == query.Limit ? next : null);
    }

    /// <summary>One entry by node and sequence, or null.</summary>
    public AuditEntry? Entry(string node, long sequence) =>
        sequence < 1 ? null : store.Query(node, new AuditQuery { AfterSequence = sequence - 1, Limit = 1 }).FirstOrDefault(e => e.Sequence == sequence);

    /// <summary>Completed requests and tokens per day, over every chain or one node's.</summary>
    public IReadOnlyList<UsageRow> Usage(DateTimeOffset from, DateTimeOffset to, string groupBy, string? node = null, IReadOnlyList<string>? teams = null, string? user = null) =>
        store.Usage(node, from, to, groupBy, teams, user);

    /// <summary>
    /// Verifies each chain in scope with <paramref name="publicKey"/> (incrementally unless <paramref name="full"/>).
    /// A chain whose checkpoints another key signed is reported broken, naming both keys: a cluster shares one key.
    /// A chain this verifier reached a signed checkpoint of earlier, and that is now gone from the store altogether
    /// (entries, checkpoints and retention record deleted), is reported cut off rather than silently left out. The whole
    /// set (no node named) is also checked against the chains' witnesses of each other (<see cref="ChainWitness"/>),
    /// which finds such a chain, or one cut short with its checkpoints, on a first verification too.
    /// </summary>
    public IReadOnlyList<ChainVerdict> Verify(IncrementalVerifier verifier, ECDsa publicKey, bool full, string? node = null)
    {
        var present = Chains(null);
        var scope = node is null ? present.Union(verifier.Reached.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList() : [node];
        var verdicts = scope.Select(chain => !present.Contains(chain) && verifier.Reached.TryGetValue(chain, out var reached)
            ? (chain, ChainVerification.Broken(0, 0, true, ChainProblem.Truncated, 1,
                $"the chain of node {chain} is gone from the store: an earlier verification reached its signed entry {reached.Sequence}"))
            : (chain, verifier.Verify(store, chain, publicKey, full))).ToList();
        return [.. (node is null ? ChainWitness.Check(store, verdicts) : verdicts).Select(v => new ChainVerdict(v.Node, v.Verdict))];
    }

    private static bool Before(AuditEntry a, AuditEntry b, bool newestFirst)
    {
        var order = a.Record.Time.CompareTo(b.Record.Time);
        if (order == 0)
        {
            order = string.CompareOrdinal(a.Node, b.Node);
        }

        return newestFirst ? order > 0 : order < 0;
    }
}
