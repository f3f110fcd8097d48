using Appliance.Engine;
using Microsoft.ML.OnnxRuntime;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// The KV cache of a shared-buffer decoder (GroupQueryAttention, past and present are one tensor): one preallocated
/// [max_batch, kv_heads, context, head_size] buffer per layer, one row (slot) per sequence, written in place by the
/// model. A run covers a contiguous range of slots; rows are moved only to close gaps when sequences leave.
/// </summary>
internal sealed class SharedBufferKvCache : IKvCacheLayout
{
    private readonly KvArena _arena;
    private readonly long?[] _slotOwner;
    private readonly Dictionary<long, (int Slot, int Length)> _sequences = [];
    private readonly int _kvHeads;
    private readonly int _headSize;
    private readonly int _contextLength;
    private readonly string[] _presentNames;

    public SharedBufferKvCache(int layers, int kvHeads, int headSize, int maxBatch, int contextLength, string[] presentNames)
    {
        _kvHeads = kvHeads;
        _headSize = headSize;
        _contextLength = contextLength;
        _presentNames = presentNames;
        _slotOwner = new long?[maxBatch];
        _arena = new KvArena(layers, (long)maxBatch * RowFloats);
    }

    public PaddingSide Padding => PaddingSide.Right;

    public long Bytes => _arena.CapacityBytes;

    private long RowFloats => (long)_kvHeads * _contextLength * _headSize;

    public KvRunPlan Prepare(IReadOnlyList<RunnerSequence> batch, bool decode)
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

        if (decode)
        {
            PlaceAtFront(batch);
        }

        // Run order is slot order; the slots form one contiguous range.
        var order = Enumerable.Range(0, batch.Count).OrderBy(i => _sequences[batch[i].SequenceId].Slot).ToArray();
        var first = _sequences[batch[order[0]].SequenceId].Slot;
        if (_sequences[batch[order[^1]].SequenceId].Slot - first != batch.Count - 1)
        {
            throw new InvalidOperationException("The batch's KV slots are not contiguous.");
        }

        var (keys, values) = _arena.Views([batch.Count, _kvHeads, _contextLength, _headSize], first * RowFloats);
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

    public void Dispose() => _arena.Dispose();

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

    /// <summary>Makes the batch occupy slots [0, batch size): rows outside swap with whatever sits in a slot they need.</summary>
    private void PlaceAtFront(IReadOnlyList<RunnerSequence> batch)
    {
        var members = batch.Select(r => r.SequenceId).ToHashSet();
        var outside = members.Where(id => _sequences[id].Slot >= batch.Count).ToList();
        var targets = Enumerable.Range(0, batch.Count).Where(s => _slotOwner[s] is not { } owner || !members.Contains(owner)).ToList();
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
        ForEachHeadRange(slot, targetSlot, length, (buffer, from, to, count) => buffer.Slice(from, count).CopyTo(buffer.Slice(to, count)));
        _slotOwner[slot] = null;
        _slotOwner[targetSlot] = sequenceId;
        _sequences[sequenceId] = (targetSlot, length);
    }

    private void SwapRows(long a, long b)
    {
        var (slotA, lengthA) = _sequences[a];
        var (slotB, lengthB) = _sequences[b];
        ForEachHeadRange(slotA, slotB, Math.Max(lengthA, lengthB), (buffer, x, y, count) =>
        {
            for (var i = 0; i < count; i++)
            {
                (buffer[x + i], buffer[y + i]) = (buffer[y + i], buffer[x + i]);
            }
        });
        (_slotOwner[slotA], _slotOwner[slotB]) = (b, a);
        _sequences[a] = (slotB, lengthA);
        _sequences[b] = (slotA, lengthB);
    }

    private delegate void RangeAction(Span<float> buffer, int from, int to, int count);

    /// <summary>Applies an action to the first <paramref name="tokens"/> positions of every head of two rows, in every layer.</summary>
    private void ForEachHeadRange(int fromSlot, int toSlot, int tokens, RangeAction action)
    {
        for (var layer = 0; layer < _arena.Layers; layer++)
        {
            foreach (var key in new[] { true, false })
            {
                var buffer = _arena.Buffer(layer, key);
                for (var head = 0; head < _kvHeads; head++)
                {
                    var from = (int)((fromSlot * RowFloats) + ((long)head * _contextLength * _headSize));
                    var to = (int)((toSlot * RowFloats) + ((long)head * _contextLength * _headSize));
                    action(buffer, from, to, tokens * _headSize);
                }
            }
        }
    }
}
