using Microsoft.ML.OnnxRuntime;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// Per-layer key and value tensors [rows, kv_heads, length, head_size] that hold some sequences, each right-aligned
/// (padding on the left). Lives in a <see cref="KvArena"/> or in tensors ONNX Runtime allocated for a prefill.
/// </summary>
internal sealed class KvGroup(OrtValue[] keys, OrtValue[] values, long[] sequenceIds, int length, KvArena? arena) : IDisposable
{
    private bool _disposed;

    public OrtValue[] Keys { get; } = keys;

    public OrtValue[] Values { get; } = values;

    public long[] SequenceIds { get; } = sequenceIds;

    /// <summary>Padded length of every row.</summary>
    public int Length { get; } = length;

    public KvArena? Arena { get; } = arena;

    /// <summary>Rows that still belong to a live sequence; the group is disposed when none are left.</summary>
    public int LiveRows { get; set; } = sequenceIds.Length;

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var value in Keys.Concat(Values))
        {
            value.Dispose();
        }

        if (Arena?.Owner == this)
        {
            Arena.Owner = null;
        }
    }
}

/// <summary>Where a sequence's KV state lives: a row of a group, with its real (unpadded) length.</summary>
internal readonly record struct KvLocation(KvGroup Group, int Row, int Length);
