namespace Appliance.Engine.KvCache;

/// <summary>The KV cache space a sequence holds: its reserved token count.</summary>
public readonly record struct KvAllocation(long SequenceId, int Tokens);

/// <summary>
/// Accounts the runner's bounded KV memory in tokens. A sequence reserves its worst case (prompt plus
/// max_tokens, capped by the context) when it is admitted, so a running sequence never has to be preempted;
/// when the cache is full, new requests wait.
/// </summary>
public sealed class KvCacheManager
{
    private readonly Dictionary<long, int> _reservations = [];

    public KvCacheManager(int capacityTokens)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacityTokens, 1);
        CapacityTokens = capacityTokens;
    }

    public int CapacityTokens { get; }

    public int UsedTokens { get; private set; }

    public int FreeTokens => CapacityTokens - UsedTokens;

    /// <summary>Reserves space, or returns null when it does not fit now.</summary>
    public KvAllocation? TryAllocate(long sequenceId, int tokens)
    {
        if (_reservations.ContainsKey(sequenceId))
        {
            throw new InvalidOperationException($"Sequence {sequenceId} already holds KV space.");
        }

        if (tokens > FreeTokens)
        {
            return null;
        }

        _reservations[sequenceId] = tokens;
        UsedTokens += tokens;
        return new KvAllocation(sequenceId, tokens);
    }

    public void Free(long sequenceId)
    {
        if (_reservations.Remove(sequenceId, out var tokens))
        {
            UsedTokens -= tokens;
        }
    }
}
