using Appliance.Engine;
using Appliance.Runtime.Onnx.Execution.Memory;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// The runner's block pool for prefix caching, on the device the session runs on: per layer a key and a value buffer
/// of [kv_heads, blocks * block_tokens, head_size], so that consecutive slots are consecutive positions of each head.
/// Blocks are copied out of a sequence's row and into a new one on the device: one strided copy per layer, key or
/// value, and run of consecutive slots (never through the host, never waited for here: the runner waits for its copies
/// before the next model run, and they run in order on one stream).
/// </summary>
internal sealed class PrefixBlockPool : IPrefixBlockStore, IDisposable
{
    private readonly KvStorage _storage;
    private readonly IKvCacheLayout _layout;
    private readonly KvArena _arena;
    private readonly int _kvHeads;
    private readonly long _positionBytes;

    public PrefixBlockPool(KvStorage storage, IKvCacheLayout layout, TensorElementType elementType, int layers, int kvHeads, int headSize, int blockTokens, int blocks)
    {
        _storage = storage;
        _layout = layout;
        _kvHeads = kvHeads;
        BlockTokens = blockTokens;
        BlockCapacity = blocks;
        _arena = new KvArena(storage, layers, (long)blocks * kvHeads * blockTokens * headSize, elementType);
        _positionBytes = (long)headSize * _arena.ElementSize;
    }

    public int BlockTokens { get; }

    public int BlockCapacity { get; }

    public long Bytes => _arena.CapacityBytes;

    private long BlockBytes => BlockTokens * _positionBytes;

    /// <summary>Bytes from one head's positions to the next in the pool.</summary>
    private long PoolHeadPitch => BlockCapacity * BlockBytes;

    public void SaveBlocks(long sequenceId, int firstToken, ReadOnlySpan<int> slots)
    {
        Validate(slots);
        for (var layer = 0; layer < _arena.Layers; layer++)
        {
            foreach (var key in (ReadOnlySpan<bool>)[true, false])
            {
                var (row, headPitch) = _layout.RowOf(sequenceId, layer, key);
                foreach (var (start, length) in Runs(slots))
                {
                    var position = firstToken + ((long)start * BlockTokens);
                    _storage.CopyBlocks(Slot(layer, key, slots[start]), PoolHeadPitch, row + (nint)(position * _positionBytes), headPitch, length * BlockBytes, _kvHeads);
                }
            }
        }
    }

    public void LoadBlocks(long sequenceId, ReadOnlySpan<int> slots)
    {
        Validate(slots);
        _layout.Reserve(sequenceId, slots.Length * BlockTokens);
        try
        {
            for (var layer = 0; layer < _arena.Layers; layer++)
            {
                foreach (var key in (ReadOnlySpan<bool>)[true, false])
                {
                    var (row, headPitch) = _layout.RowOf(sequenceId, layer, key);
                    foreach (var (start, length) in Runs(slots))
                    {
                        var position = (long)start * BlockTokens;
                        _storage.CopyBlocks(row + (nint)(position * _positionBytes), headPitch, Slot(layer, key, slots[start]), PoolHeadPitch, length * BlockBytes, _kvHeads);
                    }
                }
            }
        }
        catch
        {
            _layout.Release(sequenceId);
            throw;
        }
    }

    public void Dispose() => _arena.Dispose();

    /// <summary>Runs of consecutive slots (start index in the list, length): each is one copy per layer and key/value.</summary>
    private static List<(int Start, int Length)> Runs(ReadOnlySpan<int> slots)
    {
        var runs = new List<(int, int)>();
        var start = 0;
        for (var i = 1; i <= slots.Length; i++)
        {
            if (i == slots.Length || slots[i] != slots[i - 1] + 1)
            {
                runs.Add((start, i - start));
                start = i;
            }
        }

        return runs;
    }

    private void Validate(ReadOnlySpan<int> slots)
    {
        foreach (var slot in slots)
        {
            if ((uint)slot >= (uint)BlockCapacity)
            {
                throw new ArgumentOutOfRangeException(nameof(slots), $"Block {slot} is outside the pool of {BlockCapacity}.");
            }
        }
    }

    /// <summary>Where a slot's first head starts in a layer's key or value buffer.</summary>
    private IntPtr Slot(int layer, bool key, int slot) => _arena.Address(layer, key) + (nint)(slot * BlockBytes);
}
