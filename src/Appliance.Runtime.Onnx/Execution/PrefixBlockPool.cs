using Appliance.Engine;
using Appliance.Runtime.Onnx.Execution.Memory;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// The runner's block pool for prefix caching, on the device the session runs on: per layer a key and a value buffer
/// of [blocks, kv_heads, block_tokens, head_size]. Blocks are copied out of a sequence's row and into a new one on the
/// device, one strided copy per layer, key or value, and block (never through the host).
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

    /// <summary>Bytes of one block for one layer's keys (or values).</summary>
    private long BlockBytes => _kvHeads * BlockTokens * _positionBytes;

    public void SaveBlocks(long sequenceId, int firstToken, ReadOnlySpan<int> slots)
    {
        for (var layer = 0; layer < _arena.Layers; layer++)
        {
            foreach (var key in (ReadOnlySpan<bool>)[true, false])
            {
                var (row, headPitch) = _layout.RowOf(sequenceId, layer, key);
                for (var i = 0; i < slots.Length; i++)
                {
                    var position = firstToken + ((long)i * BlockTokens);
                    _storage.CopyBlocks(Block(layer, key, slots[i]), BlockTokens * _positionBytes, row + (nint)(position * _positionBytes), headPitch, BlockTokens * _positionBytes, _kvHeads);
                }
            }
        }

        // The row may be released and reused right after: its copy must be done first.
        _storage.Synchronize();
    }

    public void LoadBlocks(long sequenceId, ReadOnlySpan<int> slots)
    {
        _layout.Reserve(sequenceId, slots.Length * BlockTokens);
        try
        {
            for (var layer = 0; layer < _arena.Layers; layer++)
            {
                foreach (var key in (ReadOnlySpan<bool>)[true, false])
                {
                    var (row, headPitch) = _layout.RowOf(sequenceId, layer, key);
                    for (var i = 0; i < slots.Length; i++)
                    {
                        var position = (long)i * BlockTokens;
                        _storage.CopyBlocks(row + (nint)(position * _positionBytes), headPitch, Block(layer, key, slots[i]), BlockTokens * _positionBytes, BlockTokens * _positionBytes, _kvHeads);
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

    private IntPtr Block(int layer, bool key, int slot)
    {
        if ((uint)slot >= (uint)BlockCapacity)
        {
            throw new ArgumentOutOfRangeException(nameof(slot), $"Block {slot} is outside the pool of {BlockCapacity}.");
        }

        return _arena.Address(layer, key) + (nint)(slot * BlockBytes);
    }
}
