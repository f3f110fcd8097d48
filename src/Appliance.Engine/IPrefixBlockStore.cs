namespace Appliance.Engine;

/// <summary>
/// A pool of KV blocks a runner keeps apart from its sequences' rows, so that the KV of a prompt prefix computed once
/// can be copied into a later sequence instead of computed again. A block holds <see cref="BlockTokens"/> positions
/// of every layer's keys and values; slots are numbered 0 to <see cref="BlockCapacity"/> - 1. Which slot holds which
/// tokens is the engine's business (see KvCache.PrefixBlockIndex); the store only copies.
/// </summary>
public interface IPrefixBlockStore
{
    /// <summary>Positions per block.</summary>
    int BlockTokens { get; }

    /// <summary>Blocks the pool holds.</summary>
    int BlockCapacity { get; }

    /// <summary>
    /// Copies the sequence's KV positions from <paramref name="firstToken"/> on, one block per slot in order, into
    /// <paramref name="slots"/>. The positions must be in the sequence's cache already.
    /// </summary>
    void SaveBlocks(long sequenceId, int firstToken, ReadOnlySpan<int> slots);

    /// <summary>
    /// Starts a sequence the runner does not hold yet with the KV of <paramref name="slots"/>, in order: afterwards it
    /// has slots.Length * <see cref="BlockTokens"/> tokens in its cache, as if they had been run. When it throws, the
    /// sequence is left without KV state.
    /// </summary>
    void LoadBlocks(long sequenceId, ReadOnlySpan<int> slots);
}
