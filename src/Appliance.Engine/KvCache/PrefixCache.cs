using Appliance.Engine.Scheduling;

namespace Appliance.Engine.KvCache;

/// <summary>
/// Prefix caching for one engine: the index of cached prefixes and the runner's block pool they live in. A sequence
/// admitted with a cached prefix gets that KV copied in and starts its prefill after it; a sequence's computed blocks
/// are saved when its prompt is in, when it finishes and when it is preempted (so it resumes cheaply). Blocks are
/// copied into and out of rows, so a block in the pool is never in use by a running sequence and eviction never waits.
/// Owned by the engine thread.
/// </summary>
internal sealed class PrefixCache
{
    private readonly IPrefixBlockStore _store;
    private readonly PrefixBlockIndex _index;
    private readonly Action<Exception> _copyFailed;
    private readonly int? _widthSwitchLength;
    private long _lookupTokens;
    private long _hitTokens;

    /// <param name="copyFailed">Told when a copy fails: the cache is emptied and serving goes on without it.</param>
    /// <param name="widthSwitchLength">The model's <see cref="ModelInfo.WidthSwitchLength"/>, if any.</param>
    public PrefixCache(IPrefixBlockStore store, Action<Exception> copyFailed, int? widthSwitchLength = null)
    {
        _store = store;
        _copyFailed = copyFailed;
        _widthSwitchLength = widthSwitchLength;
        _index = new PrefixBlockIndex(store.BlockTokens, store.BlockCapacity);
    }

    /// <summary>Prompt tokens looked up at admission, and how many of them were found cached (hits are added first, lookups read first: never more hits than lookups).</summary>
    public (long LookupTokens, long HitTokens) Counters
    {
        get
        {
            var lookups = Interlocked.Read(ref _lookupTokens);
            return (lookups, Math.Min(Interlocked.Read(ref _hitTokens), lookups));
        }
    }

    public int CapacityBlocks => _index.Capacity;

    public int BlockTokens => _index.BlockTokens;

    /// <summary>
    /// The cached prefix a sequence about to be admitted would start with, in whole blocks, leaving at least one token
    /// to run (its logits pick the next token). Empty for a sequence that already holds KV.
    /// </summary>
    public List<int> Match(Sequence sequence)
    {
        if (sequence.Computed > 0)
        {
            return [];
        }

        return _index.Match(sequence.Request.Tenant, sequence.Tokens, sequence.Tokens.Count - 1, Partition(sequence));
    }

    /// <summary>Gives the admitted sequence the matched prefix's KV; counts it for the hit rate.</summary>
    public void Load(Sequence sequence, List<int> slots)
    {
        var tokens = slots.Count * _index.BlockTokens;
        if (slots.Count > 0)
        {
            try
            {
                _store.LoadBlocks(sequence.Id, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(slots));
                sequence.Computed = tokens;
            }
            catch (Exception exception)
            {
                // The store leaves a sequence whose load failed without KV: it computes its prompt instead.
                tokens = 0;
                _index.Clear();
                _copyFailed(exception);
            }
        }

        // Hit rate and cached_tokens describe a request's prompt as it first arrived, not a preempted one's return.
        if (sequence.Preemptions == 0)
        {
            sequence.CachedPromptTokens = Math.Min(tokens, sequence.PromptLength);
            Interlocked.Add(ref _hitTokens, sequence.CachedPromptTokens);
            Interlocked.Add(ref _lookupTokens, sequence.PromptLength);
        }
    }

    /// <summary>Forgets every cached prefix (after the engine restarted: what the pool holds is not trusted).</summary>
    public void Clear() => _index.Clear();

    /// <summary>Saves the sequence's computed whole blocks not cached yet. A failed copy empties the cache; the sequence is unharmed.</summary>
    public void Save(Sequence sequence)
    {
        var (firstBlock, slots) = _index.Insert(sequence.Request.Tenant, sequence.Tokens, sequence.Computed, Partition(sequence));
        if (slots.Count == 0)
        {
            return;
        }

        try
        {
            _store.SaveBlocks(sequence.Id, firstBlock * _index.BlockTokens, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(slots));
        }
        catch (Exception exception)
        {
            _index.Clear(); // which blocks were written is unknown: trust none
            _copyFailed(exception);
        }
    }

    /// <summary>
    /// For a model that switches rotary caches by a run's width, which side of the switch the sequence's prompt lies
    /// on: the same tokens hold other keys on the other side, so such blocks are never shared (they count towards the
    /// tenant's one part of the pool all the same).
    /// </summary>
    private string Partition(Sequence sequence) =>
        _widthSwitchLength is { } limit && sequence.PromptLength > limit ? "long-rotary" : "";
}
