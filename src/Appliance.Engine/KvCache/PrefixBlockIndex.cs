using System.Runtime.InteropServices;

namespace Appliance.Engine.KvCache;

/// <summary>
/// Which prompt prefixes the runner's block pool holds. A block is known by its parent block and its own tokens, so a
/// block stands for the whole prefix that leads to it; the chain starts at a root per tenant (and per partition within
/// it, such as the side of a LongRoPE switch, whose blocks share the tenant's part of the pool), so one tenant's blocks
/// are never found from another's prompt (and no timing can tell what another tenant sent). Keys compare the tokens
/// themselves, not a hash of them: a hit is exact. Only leaves are evicted (a block that later blocks extend stays
/// until they go), least recently used first; but a tenant holding half the pool or more, while another tenant that
/// used the cache in the last <see cref="RecentUse"/> holds blocks too, makes room among its own blocks only (or caches no further): a tenant
/// flooding the pool with prompts nobody repeats cannot push out a steady tenant's system prompt, while the blocks of
/// tenants gone quiet age out as LRU has them. While the pool has free slots any tenant may use them, and a tenant
/// alone may use all of it. Owned by the engine thread.
/// </summary>
internal sealed class PrefixBlockIndex
{
    private readonly Dictionary<BlockKey, Block> _blocks = new(BlockKeyComparer.Instance);
    private readonly Dictionary<(string Tenant, string Partition), Block> _roots = [];
    private readonly Dictionary<string, TenantShare> _shares = new(StringComparer.Ordinal);
    private readonly Stack<int> _freeSlots;
    private long _nextId;
    private long _clock;

    /// <summary>How long a tenant counts as using the cache after it last looked up or saved a prefix.</summary>
    public static readonly TimeSpan RecentUse = TimeSpan.FromMinutes(10);

    private readonly Func<long> _milliseconds;

    /// <param name="milliseconds">A monotonic clock in milliseconds (tests give their own).</param>
    public PrefixBlockIndex(int blockTokens, int capacity, Func<long>? milliseconds = null)
    {
        _milliseconds = milliseconds ?? (() => Environment.TickCount64);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockTokens, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        BlockTokens = blockTokens;
        Capacity = capacity;
        _freeSlots = new Stack<int>(Enumerable.Range(0, capacity).Reverse());
    }

    public int BlockTokens { get; }

    public int Capacity { get; }

    /// <summary>Blocks holding a prefix now.</summary>
    public int UsedBlocks => _blocks.Count;

    /// <summary>The blocks a tenant may hold once the pool is full and other tenants hold blocks too: half the pool.</summary>
    public int TenantCap => Math.Max(1, Capacity / 2);

    /// <summary>Blocks dropped to make room for newer ones.</summary>
    public long Evictions { get; private set; }

    /// <summary>
    /// The slots of the longest cached prefix of <paramref name="tokens"/>, whole blocks of at most
    /// <paramref name="maxTokens"/> tokens, marked as used now.
    /// </summary>
    public List<int> Match(string tenant, IReadOnlyList<int> tokens, int maxTokens, string partition = "")
    {
        var slots = new List<int>();
        if (!_roots.TryGetValue((tenant, partition), out var parent))
        {
            return slots;
        }

        var blocks = Math.Min(maxTokens, tokens.Count) / BlockTokens;
        var now = ++_clock;
        parent.Share.UsedAt = _milliseconds();
        for (var i = 0; i < blocks && _blocks.TryGetValue(KeyOf(parent, tokens, i), out var block); i++)
        {
            Touch(block, now);
            slots.Add(block.Slot);
            parent = block;
        }

        return slots;
    }

    /// <summary>
    /// Records the whole blocks of <paramref name="tokens"/>[0, <paramref name="computedTokens"/>) that are not cached
    /// yet, evicting old leaves for room. Returns the index of the first new block and the slots to fill, in order
    /// (the caller copies the KV into them); stops early when nothing more can be evicted.
    /// </summary>
    public (int FirstBlock, List<int> Slots) Insert(string tenant, IReadOnlyList<int> tokens, int computedTokens, string partition = "")
    {
        var parent = RootOf(tenant, partition);
        var blocks = Math.Min(computedTokens, tokens.Count) / BlockTokens;
        var now = ++_clock;
        parent.Share.UsedAt = _milliseconds();
        var slots = new List<int>();
        var first = -1;
        for (var i = 0; i < blocks; i++)
        {
            var key = KeyOf(parent, tokens, i);
            if (_blocks.TryGetValue(key, out var existing))
            {
                // Only before the first new block: a new block has no children yet.
                Touch(existing, now);
                parent = existing;
                continue;
            }

            // The parent gains a child before a slot is found, so it cannot be the leaf evicted to make room.
            AddChild(parent);
            if (TakeSlot(parent.Share) is not { } slot)
            {
                RemoveChild(parent);
                break;
            }

            var block = new Block(++_nextId, parent, key.Tokens, slot, parent.Share) { LastUsed = now };
            _blocks[new BlockKey(parent.Id, key.Tokens)] = block;
            block.Share.Blocks++;
            block.Node = block.Share.Evictable.AddLast(block);
            first = first < 0 ? i : first;
            slots.Add(slot);
            parent = block;
        }

        if (_roots.TryGetValue((tenant, partition), out var root) && root.Children == 0)
        {
            RemoveRoot(root); // nothing was cached under it
        }

        return (Math.Max(first, 0), slots);
    }

    /// <summary>Forgets every block (after a failed copy left the pool's contents unknown).</summary>
    public void Clear()
    {
        _blocks.Clear();
        _roots.Clear();
        _shares.Clear();
        _freeSlots.Clear();
        foreach (var slot in Enumerable.Range(0, Capacity).Reverse())
        {
            _freeSlots.Push(slot);
        }
    }

    private Block RootOf(string tenant, string partition)
    {
        if (!_roots.TryGetValue((tenant, partition), out var root))
        {
            if (!_shares.TryGetValue(tenant, out var share))
            {
                share = new TenantShare(tenant);
                _shares[tenant] = share;
            }

            root = new Block(++_nextId, null, [], -1, share) { Partition = partition };
            _roots[(tenant, partition)] = root;
            share.Roots++;
        }

        return root;
    }

    /// <summary>A root with nothing under it costs nothing; nor does a tenant left without roots.</summary>
    private void RemoveRoot(Block root)
    {
        _roots.Remove((root.Share.Tenant, root.Partition));
        if (--root.Share.Roots == 0)
        {
            _shares.Remove(root.Share.Tenant);
        }
    }

    private BlockKey KeyOf(Block parent, IReadOnlyList<int> tokens, int block)
    {
        var slice = new int[BlockTokens];
        for (var j = 0; j < BlockTokens; j++)
        {
            slice[j] = tokens[(block * BlockTokens) + j];
        }

        return new BlockKey(parent.Id, slice);
    }

    private int? TakeSlot(TenantShare taker)
    {
        if (_freeSlots.TryPop(out var free))
        {
            return free;
        }

        var recently = _milliseconds() - (long)RecentUse.TotalMilliseconds;
        var atItsCap = taker.Blocks >= TenantCap
            && _shares.Values.Any(share => share != taker && share.Blocks > 0 && share.UsedAt > recently);
        // At its cap: its own oldest leaf, or an older one of a tenant gone quiet.
        if ((atItsCap ? Older(taker.Evictable.First, OldestLeaf(share => share.UsedAt <= recently)) : OldestLeaf(_ => true)) is not { } oldest)
        {
            return null;
        }

        var victim = oldest.Value;
        victim.Share.Evictable.Remove(oldest);
        victim.Share.Blocks--;
        victim.Node = null;
        _blocks.Remove(new BlockKey(victim.Parent!.Id, victim.Tokens));
        Evictions++;
        RemoveChild(victim.Parent);
        return victim.Slot;
    }

    /// <summary>The least recently used leaf of the tenants <paramref name="of"/> selects.</summary>
    private LinkedListNode<Block>? OldestLeaf(Func<TenantShare, bool> of)
    {
        LinkedListNode<Block>? oldest = null;
        foreach (var share in _shares.Values)
        {
            if (of(share) && share.Evictable.First is { } first)
            {
                oldest = Older(oldest, first);
            }
        }

        return oldest;
    }

    private static LinkedListNode<Block>? Older(LinkedListNode<Block>? a, LinkedListNode<Block>? b) =>
        a is null ? b : b is null ? a : b.Value.LastUsed < a.Value.LastUsed ? b : a;

    private void AddChild(Block parent)
    {
        parent.Children++;
        if (parent.Node is not null)
        {
            parent.Share.Evictable.Remove(parent.Node);
            parent.Node = null;
        }
    }

    /// <summary>A block left without children becomes a leaf again, placed in the LRU order by its last use.</summary>
    private void RemoveChild(Block parent)
    {
        parent.Children--;
        if (parent.Children > 0)
        {
            return;
        }

        if (parent.Parent is null)
        {
            RemoveRoot(parent);
            return;
        }

        var evictable = parent.Share.Evictable;
        var after = evictable.Last;
        while (after is not null && after.Value.LastUsed > parent.LastUsed)
        {
            after = after.Previous;
        }

        parent.Node = after is null ? evictable.AddFirst(parent) : evictable.AddAfter(after, parent);
    }

    private void Touch(Block block, long now)
    {
        block.LastUsed = now;
        if (block.Node is not null)
        {
            block.Share.Evictable.Remove(block.Node);
            block.Node = block.Share.Evictable.AddLast(block);
        }
    }

    private sealed class Block(long id, Block? parent, int[] tokens, int slot, TenantShare share)
    {
        public long Id { get; } = id;

        public Block? Parent { get; } = parent;

        public int[] Tokens { get; } = tokens;

        public int Slot { get; } = slot;

        public int Children { get; set; }

        public long LastUsed { get; set; }

        /// <summary>The tenant whose prompts the block holds (a root: the tenant it starts).</summary>
        public TenantShare Share { get; } = share;

        /// <summary>The block's place in the eviction order while it is a leaf.</summary>
        public LinkedListNode<Block>? Node { get; set; }

        /// <summary>For a root: the partition of the tenant's prompts it starts.</summary>
        public string Partition { get; init; } = "";
    }

    /// <summary>
    /// One tenant's part of the pool, over all its partitions: how many blocks it holds, and its leaves, least recently
    /// used first.
    /// </summary>
    private sealed class TenantShare(string tenant)
    {
        public string Tenant { get; } = tenant;

        /// <summary>Roots (partitions) that start the tenant's cached prefixes.</summary>
        public int Roots { get; set; }

        public int Blocks { get; set; }

        /// <summary>When the tenant last looked up or saved a prefix (milliseconds of the index's clock).</summary>
        public long UsedAt { get; set; }

        public LinkedList<Block> Evictable { get; } = [];
    }

    private readonly record struct BlockKey(long ParentId, int[] Tokens);

    private sealed class BlockKeyComparer : IEqualityComparer<BlockKey>
    {
        public static readonly BlockKeyComparer Instance = new();

        public bool Equals(BlockKey x, BlockKey y) => x.ParentId == y.ParentId && x.Tokens.AsSpan().SequenceEqual(y.Tokens);

        public int GetHashCode(BlockKey key)
        {
            var hash = new HashCode();
            hash.Add(key.ParentId);
            hash.AddBytes(MemoryMarshal.AsBytes(key.Tokens.AsSpan()));
            return hash.ToHashCode();
        }
    }
}
