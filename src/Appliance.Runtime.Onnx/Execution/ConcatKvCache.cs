using Appliance.Engine;
using Appliance.Runtime.Onnx.Execution.Memory;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// The KV cache of a concatenating-layout decoder for a continuously changing batch. While the batch stays the same,
/// each step's present tensors are fed back as the next past without a copy (ping-pong between two preallocated
/// arenas). When sequences join or leave, their rows are gathered once into the free arena, left-padded to the
/// longest. Prefill outputs stay in ONNX Runtime's tensors (on the device) until their sequences first decode. Every
/// copy happens on the device.
/// </summary>
internal sealed class ConcatKvCache : IKvCacheLayout
{
    private readonly Dictionary<long, KvLocation> _locations = [];
    private readonly KvStorage _storage;
    private readonly TensorElementType _elementType;
    private readonly int _elementSize;
    private readonly KvArena[] _arenas;
    private readonly int _layers;
    private readonly int _kvHeads;
    private readonly int _headSize;
    private readonly string[] _presentKeyNames;
    private readonly string[] _presentValueNames;
    private KvArena? _presentArena;

    public ConcatKvCache(KvStorage storage, TensorElementType elementType, int layers, int kvHeads, int headSize, int maxBatch, int contextLength, string[] presentKeyNames, string[] presentValueNames)
    {
        _storage = storage;
        _elementType = elementType;
        _elementSize = DecoderSignature.ElementSize(elementType);
        _presentKeyNames = presentKeyNames;
        _presentValueNames = presentValueNames;
        _layers = layers;
        _kvHeads = kvHeads;
        _headSize = headSize;
        var capacity = (long)maxBatch * kvHeads * contextLength * headSize;
        _arenas = [new KvArena(storage, layers, capacity, elementType), new KvArena(storage, layers, capacity, elementType)];
    }

    public PaddingSide Padding => PaddingSide.Left;

    public long Bytes => _arenas.Sum(a => a.CapacityBytes);

    public int Length(long sequenceId) => _locations.TryGetValue(sequenceId, out var l) ? l.Length : 0;

    /// <summary>
    /// Past tensors for a batch, and where its present goes: an arena (steady-state decoding allocates nothing) or,
    /// for prefills, tensors ONNX Runtime allocates.
    /// </summary>
    public KvRunPlan Prepare(IReadOnlyList<RunnerSequence> batch, bool decode, int? placeAt = null)
    {
        var (past, presentArena) = Arrange(batch, decode);
        _presentArena = presentArena;
        var width = batch.Max(r => r.NewTokens.Length);
        var identity = Enumerable.Range(0, batch.Count).ToArray();
        var (presentKeys, presentValues) = presentArena is null
            ? ((OrtValue[]?)null, (OrtValue[]?)null)
            : presentArena.Views([batch.Count, _kvHeads, past!.Length + width, _headSize]);
        if (past is null)
        {
            var (emptyKeys, emptyValues) = _arenas[0].Views([batch.Count, _kvHeads, 0, _headSize]);
            return new KvRunPlan(batch, identity, emptyKeys, emptyValues, null, null, 0, [.. emptyKeys, .. emptyValues]);
        }

        return new KvRunPlan(batch, identity, past.Keys, past.Values, presentKeys, presentValues, past.Length, []);
    }

    public void Commit(KvRunPlan plan, IReadOnlyDictionary<string, OrtValue> presents)
    {
        var length = plan.PastWidth + plan.Rows.Max(r => r.NewTokens.Length);
        var ids = plan.Rows.Select(r => r.SequenceId).ToArray();
        KvGroup group;
        if (plan.PresentKeys is not null)
        {
            // The bound arena views come back as new handles over the same memory; the group keeps its own views.
            foreach (var name in _presentKeyNames.Concat(_presentValueNames))
            {
                presents[name].Dispose();
            }

            group = new KvGroup(plan.PresentKeys, plan.PresentValues!, ids, length, _presentArena);
        }
        else
        {
            group = new KvGroup([.. _presentKeyNames.Select(n => presents[n])], [.. _presentValueNames.Select(n => presents[n])], ids, length, null);
        }

        Commit(plan.Rows, group);
    }

    private (KvGroup? Past, KvArena? PresentArena) Arrange(IReadOnlyList<RunnerSequence> batch, bool decode)
    {
        foreach (var row in batch)
        {
            if (Length(row.SequenceId) != row.PastLength)
            {
                throw new InvalidOperationException(
                    $"Sequence {row.SequenceId} has {Length(row.SequenceId)} tokens in the KV cache, not {row.PastLength}.");
            }
        }

        if (batch.All(r => r.PastLength == 0))
        {
            return (null, null);
        }

        var past = MatchingGroup(batch);
        if (decode && past?.Arena is null && HoldsEveryArenaRow(batch))
        {
            past = Gather(batch, FreeArena());
        }
        else
        {
            past ??= Gather(batch, null);
        }

        return (past, past.Arena is null ? null : _arenas.Single(a => a != past.Arena));
    }

    /// <summary>Records the step's present tensors as the new home of the batch's sequences.</summary>
    private void Commit(IReadOnlyList<RunnerSequence> batch, KvGroup present)
    {
        if (present.Arena is not null)
        {
            if (!present.Arena.IsFree)
            {
                throw new InvalidOperationException("The present arena still holds live sequences.");
            }

            present.Arena.Owner = present;
        }

        present.LiveRows = 0;
        for (var row = 0; row < batch.Count; row++)
        {
            var sequence = batch[row];
            Move(sequence.SequenceId, new KvLocation(present, row, sequence.PastLength + sequence.NewTokens.Length));
        }
    }

    public void Release(long sequenceId)
    {
        if (_locations.Remove(sequenceId, out var location))
        {
            Leave(location.Group);
        }
    }

    public (IntPtr Start, long HeadPitch) RowOf(long sequenceId, int layer, bool key)
    {
        var (group, row, length) = _locations[sequenceId];
        var position = (long)_headSize * _elementSize;
        var tensor = key ? group.Keys[layer] : group.Values[layer];
        // Rows are right-aligned: the sequence's first position comes after the group's padding.
        var rowStart = KvStorage.Address(tensor) + (nint)((long)row * _kvHeads * group.Length * position);
        return (rowStart + (nint)((group.Length - length) * position), group.Length * position);
    }

    public void Reserve(long sequenceId, int tokens)
    {
        if (_locations.ContainsKey(sequenceId))
        {
            throw new InvalidOperationException($"Sequence {sequenceId} already holds KV state.");
        }

        var (keys, values) = Allocate([1, _kvHeads, tokens, _headSize]);
        var group = new KvGroup(keys, values, [sequenceId], tokens, null) { LiveRows = 0 };
        Move(sequenceId, new KvLocation(group, 0, tokens));
    }

    public void Dispose()
    {
        foreach (var group in _locations.Values.Select(l => l.Group).Distinct().ToList())
        {
            group.Dispose();
        }

        _locations.Clear();
        foreach (var arena in _arenas)
        {
            arena.Dispose();
        }
    }

    private KvGroup? MatchingGroup(IReadOnlyList<RunnerSequence> batch)
    {
        if (!_locations.TryGetValue(batch[0].SequenceId, out var first))
        {
            return null;
        }

        var group = first.Group;
        if (group.SequenceIds.Length != batch.Count || group.LiveRows != batch.Count)
        {
            return null;
        }

        for (var row = 0; row < batch.Count; row++)
        {
            if (!_locations.TryGetValue(batch[row].SequenceId, out var location) || location.Group != group || location.Row != row)
            {
                return null;
            }
        }

        return group;
    }

    /// <summary>
    /// Whether the batch holds every live row kept in an arena: only then is the other arena free for its present. A
    /// single row with one token left to prefill (the rest of a cached prompt) runs beside the decode batch's arena
    /// and must keep out of both.
    /// </summary>
    private bool HoldsEveryArenaRow(IReadOnlyList<RunnerSequence> batch)
    {
        foreach (var owner in _arenas.Select(a => a.Owner).Where(o => o is { LiveRows: > 0 }))
        {
            if (batch.Count(r => _locations.TryGetValue(r.SequenceId, out var l) && l.Group == owner) != owner!.LiveRows)
            {
                return false;
            }
        }

        return true;
    }

    private KvArena FreeArena() =>
        _arenas.FirstOrDefault(a => a.IsFree) ?? throw new InvalidOperationException("Both KV arenas hold live sequences.");

    /// <summary>Copies the batch's rows, right-aligned, into new tensors (in <paramref name="arena"/> or freshly allocated).</summary>
    private KvGroup Gather(IReadOnlyList<RunnerSequence> batch, KvArena? arena)
    {
        var length = batch.Max(r => r.PastLength);
        long[] shape = [batch.Count, _kvHeads, length, _headSize];
        var (keys, values) = arena is not null ? arena.Views(shape) : Allocate(shape);
        var group = new KvGroup(keys, values, [.. batch.Select(r => r.SequenceId)], length, arena);
        for (var layer = 0; layer < _layers; layer++)
        {
            for (var row = 0; row < batch.Count; row++)
            {
                var source = _locations[batch[row].SequenceId];
                CopyRow(source.Group.Keys[layer], source.Group.Length, source.Row, keys[layer], length, row, source.Length);
                CopyRow(source.Group.Values[layer], source.Group.Length, source.Row, values[layer], length, row, source.Length);
            }
        }

        if (arena is not null)
        {
            arena.Owner = group;
        }

        group.LiveRows = 0;
        for (var row = 0; row < batch.Count; row++)
        {
            Move(batch[row].SequenceId, new KvLocation(group, row, batch[row].PastLength));
        }

        return group;
    }

    private (OrtValue[] Keys, OrtValue[] Values) Allocate(long[] shape)
    {
        var keys = new OrtValue[_layers];
        var values = new OrtValue[_layers];
        for (var i = 0; i < _layers; i++)
        {
            keys[i] = OrtValue.CreateAllocatedTensorValue(_storage.TensorAllocator, _elementType, shape);
            values[i] = OrtValue.CreateAllocatedTensorValue(_storage.TensorAllocator, _elementType, shape);
        }

        return (keys, values);
    }

    /// <summary>
    /// Copies the last <paramref name="tokens"/> positions of a row and zeroes the padding before them: one strided
    /// copy and one strided clear over the row's heads.
    /// </summary>
    private void CopyRow(OrtValue source, int sourceLength, int sourceRow, OrtValue target, int targetLength, int targetRow, int tokens)
    {
        var position = (long)_headSize * _elementSize;
        var sourceRowStart = KvStorage.Address(source) + (nint)((long)sourceRow * _kvHeads * sourceLength * position);
        var targetRowStart = KvStorage.Address(target) + (nint)((long)targetRow * _kvHeads * targetLength * position);
        // Padding must be zero, not stale memory: masked values are multiplied by probability 0, and 0 * NaN is NaN.
        _storage.ClearBlocks(targetRowStart, targetLength * position, (targetLength - tokens) * position, _kvHeads);
        _storage.CopyBlocks(
            targetRowStart + (nint)((targetLength - tokens) * position), targetLength * position,
            sourceRowStart + (nint)((sourceLength - tokens) * position), sourceLength * position,
            tokens * position, _kvHeads);
    }

    private void Move(long sequenceId, KvLocation location)
    {
        if (_locations.TryGetValue(sequenceId, out var old))
        {
            Leave(old.Group);
        }

        location.Group.LiveRows++;
        _locations[sequenceId] = location;
    }

    private static void Leave(KvGroup group)
    {
        group.LiveRows--;
        if (group.LiveRows == 0)
        {
            group.Dispose();
        }
    }
}
