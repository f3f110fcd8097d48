using Appliance.Engine;
using Appliance.Runtime.Onnx.Execution.Memory;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// The KV cache of a shared-buffer decoder (GroupQueryAttention, past and present are one tensor): one preallocated
/// [max_batch, kv_heads, context, head_size] buffer per layer, one row (slot) per sequence, written in place by the
/// model. A run covers a contiguous range of slots; rows are moved only to close gaps when sequences leave, on the
/// device, copying each head's filled positions only.
/// </summary>
internal sealed class SharedBufferKvCache : IKvCacheLayout
{
    private readonly KvStorage _storage;
    private readonly KvArena _arena;
    private readonly long?[] _slotOwner;
    private readonly Dictionary<long, (int Slot, int Length)> _sequences = [];
    private readonly int _kvHeads;
    private readonly int _headSize;
    private readonly int _contextLength;
    private readonly string[] _presentNames;
    private IntPtr _scratch;

    public SharedBufferKvCache(KvStorage storage, TensorElementType elementType, int layers, int kvHeads, int headSize, int maxBatch, int contextLength, string[] presentNames)
    {
        _storage = storage;
        _kvHeads = kvHeads;
        _headSize = headSize;
        _contextLength = contextLength;
        _presentNames = presentNames;
        _slotOwner = new long?[maxBatch];
        _arena = new KvArena(storage, layers, (long)maxBatch * RowElements, elementType);
        // Swapping two rows goes through one row of scratch, allocated now (and planned) rather than mid-serving.
        try
        {
            _scratch = storage.Allocate(RowElements * _arena.ElementSize);
        }
        catch
        {
            _arena.Dispose();
            throw;
        }
    }

    public PaddingSide Padding => PaddingSide.Right;

    public long Bytes => _arena.CapacityBytes + (RowElements * _arena.ElementSize);

    private long RowElements => (long)_kvHeads * _contextLength * _headSize;

    /// <summary>Bytes from one head's start to the next within a row: the whole context.</summary>
    private long HeadPitch => (long)_contextLength * _headSize * _arena.ElementSize;

    public KvRunPlan Prepare(IReadOnlyList<RunnerSequence> batch, bool decode, int? placeAt = null)
    {
        foreach (var row in batch)
        {
            var length = _sequences.TryGetValue(row.SequenceId, out var s) ? s.Length : 0;
            if (length != row.PastLength)
            {
                throw new InvalidOperationException($"Sequence {row.SequenceId} has {length} tokens in the KV cache, not {row.PastLength}.");
            }
        }

        var fresh = batch.Where(r => !_sequences.ContainsKey(r.SequenceId)).ToList();
        if (fresh.Count > 0)
        {
            Admit(fresh, batch.Count);
        }

        // One row runs wherever it is: moving it would only copy its cache.
        if ((decode && batch.Count > 1) || placeAt is not null)
        {
            PlaceAt(batch, placeAt ?? 0);
        }

        // Run order is slot order; the slots form one contiguous range.
        var order = Enumerable.Range(0, batch.Count).OrderBy(i => _sequences[batch[i].SequenceId].Slot).ToArray();
        var first = _sequences[batch[order[0]].SequenceId].Slot;
        if (_sequences[batch[order[^1]].SequenceId].Slot - first != batch.Count - 1)
        {
            throw new InvalidOperationException("The batch's KV slots are not contiguous.");
        }

        var (keys, values) = _arena.Views([batch.Count, _kvHeads, _contextLength, _headSize], first * RowElements);
        return new KvRunPlan([.. order.Select(i => batch[i])], order, keys, values, keys, values, 0, [.. keys, .. values]);
    }

    public void Commit(KvRunPlan plan, IReadOnlyDictionary<string, OrtValue> presents)
    {
        foreach (var name in _presentNames)
        {
            presents[name].Dispose();
        }

        foreach (var row in plan.Rows)
        {
            var slot = _sequences[row.SequenceId].Slot;
            _sequences[row.SequenceId] = (slot, row.PastLength + row.NewTokens.Length);
        }
    }

    public void Release(long sequenceId)
    {
        if (_sequences.Remove(sequenceId, out var entry))
        {
            _slotOwner[entry.Slot] = null;
        }
    }

    /// <summary>Keeps a sequence's first <paramref name="length"/> positions; the rest is overwritten by its next run.</summary>
    public void Truncate(long sequenceId, int length)
    {
        var (slot, current) = _sequences[sequenceId];
        if (length < 0 || length > current)
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"Sequence {sequenceId} has {current} tokens; it cannot keep {length}.");
        }

        _sequences[sequenceId] = (slot, length);
    }

    public (IntPtr Start, long HeadPitch) RowOf(long sequenceId, int layer, bool key)
    {
        var (slot, _) = _sequences[sequenceId];
        return (_arena.Address(layer, key) + (nint)(slot * RowElements * _arena.ElementSize), HeadPitch);
    }

    public void Reserve(long sequenceId, int tokens)
    {
        if (_sequences.ContainsKey(sequenceId) || tokens > _contextLength)
        {
            throw new InvalidOperationException($"Sequence {sequenceId} cannot be given {tokens} cached tokens.");
        }

        Assign(sequenceId, Array.FindIndex(_slotOwner, o => o is null));
        _sequences[sequenceId] = (_sequences[sequenceId].Slot, tokens);
    }

    public void Dispose()
    {
        if (_scratch != IntPtr.Zero)
        {
            _storage.Free(_scratch);
            _scratch = IntPtr.Zero;
        }

        _arena.Dispose();
    }

    /// <summary>Gives new sequences free slots; a multi-row run needs them after every live row, so live rows are packed first.</summary>
    private void Admit(List<RunnerSequence> fresh, int batchSize)
    {
        if (batchSize == 1 && fresh.Count == 1)
        {
            Assign(fresh[0].SequenceId, Array.FindIndex(_slotOwner, o => o is null));
            return;
        }

        Pack();
        var next = _sequences.Count;
        foreach (var row in fresh)
        {
            Assign(row.SequenceId, next++);
        }
    }

    private void Assign(long sequenceId, int slot)
    {
        if (slot < 0 || slot >= _slotOwner.Length || _slotOwner[slot] is not null)
        {
            throw new InvalidOperationException($"No free KV slot for sequence {sequenceId}.");
        }

        _slotOwner[slot] = sequenceId;
        _sequences[sequenceId] = (slot, 0);
    }

    /// <summary>Moves live rows down into the lowest slots, keeping their order.</summary>
    private void Pack()
    {
        var target = 0;
        for (var slot = 0; slot < _slotOwner.Length; slot++)
        {
            if (_slotOwner[slot] is { } owner)
            {
                if (slot != target)
                {
                    MoveRow(owner, target);
                }

                target++;
            }
        }
    }

    /// <summary>
    /// Makes the batch occupy slots [<paramref name="start"/>, start + batch size): rows outside swap with whatever sits
    /// in a slot they need. Rows already in place do not move, so a step that keeps its rows costs no copy.
    /// </summary>
    private void PlaceAt(IReadOnlyList<RunnerSequence> batch, int start)
    {
        if (start < 0 || start + batch.Count > _slotOwner.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"Slots {start} to {start + batch.Count - 1} are not all in the cache's {_slotOwner.Length}.");
        }

        var members = batch.Select(r => r.SequenceId).ToHashSet();
        var outside = members.Where(id => _sequences[id].Slot < start || _sequences[id].Slot >= start + batch.Count).ToList();
        var targets = Enumerable.Range(start, batch.Count).Where(s => _slotOwner[s] is not { } owner || !members.Contains(owner)).ToList();
        for (var i = 0; i < outside.Count; i++)
        {
            if (_slotOwner[targets[i]] is { } other)
            {
                SwapRows(outside[i], other);
            }
            else
            {
                MoveRow(outside[i], targets[i]);
            }
        }
    }

    private void MoveRow(long sequenceId, int targetSlot)
    {
        var (slot, length) = _sequences[sequenceId];
        ForEachBuffer(buffer => CopyRow(buffer, slot, buffer, targetSlot, length));
        _slotOwner[slot] = null;
        _slotOwner[targetSlot] = sequenceId;
        _sequences[sequenceId] = (targetSlot, length);
    }

    /// <summary>Exchanges two rows through a one-row scratch buffer on the device.</summary>
    private void SwapRows(long a, long b)
    {
        var (slotA, lengthA) = _sequences[a];
        var (slotB, lengthB) = _sequences[b];
        ForEachBuffer(buffer =>
        {
            CopyRow(buffer, slotA, _scratch, 0, lengthA);
            CopyRow(buffer, slotB, buffer, slotA, lengthB);
            CopyRow(_scratch, 0, buffer, slotB, lengthA);
        });
        (_slotOwner[slotA], _slotOwner[slotB]) = (b, a);
        _sequences[a] = (slotB, lengthA);
        _sequences[b] = (slotA, lengthB);
    }

    private void ForEachBuffer(Action<IntPtr> action)
    {
        for (var layer = 0; layer < _arena.Layers; layer++)
        {
            action(_arena.Address(layer, key: true));
            action(_arena.Address(layer, key: false));
        }
    }

    /// <summary>Copies the first <paramref name="tokens"/> positions of every head of a row: one strided copy.</summary>
    private void CopyRow(IntPtr source, int sourceSlot, IntPtr target, int targetSlot, int tokens)
    {
        var rowBytes = RowElements * _arena.ElementSize;
        _storage.CopyBlocks(
            target + (nint)(targetSlot * rowBytes), HeadPitch,
            source + (nint)(sourceSlot * rowBytes), HeadPitch,
            (long)tokens * _headSize * _arena.ElementSize, _kvHeads);
    }
}
