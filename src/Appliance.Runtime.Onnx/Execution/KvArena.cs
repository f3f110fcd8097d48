using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// Preallocated native memory for one batch's KV cache: a key and a value buffer per layer, each large enough for
/// [max_batch, kv_heads, context, head_size]. Tensors of any smaller shape are views over it, so the cache's memory
/// is bounded and allocated once.
/// </summary>
internal sealed unsafe class KvArena : IDisposable
{
    private readonly float*[] _keys;
    private readonly float*[] _values;
    private readonly long _capacityFloats;

    public KvArena(int layers, long capacityFloats)
    {
        _capacityFloats = capacityFloats;
        _keys = new float*[layers];
        _values = new float*[layers];
        var bytes = (nuint)(capacityFloats * sizeof(float));
        for (var i = 0; i < layers; i++)
        {
            _keys[i] = (float*)NativeMemory.AlignedAlloc(bytes, 64);
            _values[i] = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        }
    }

    /// <summary>The group whose tensors live here now; null when the arena is free.</summary>
    public KvGroup? Owner { get; set; }

    public bool IsFree => Owner is null || Owner.LiveRows == 0;

    public long CapacityBytes => _capacityFloats * sizeof(float) * 2 * _keys.Length;

    /// <summary>Creates key and value tensor views of the given shape over this arena, from an offset in floats.</summary>
    public (OrtValue[] Keys, OrtValue[] Values) Views(long[] shape, long offsetFloats = 0)
    {
        var floats = shape.Aggregate(1L, (a, b) => a * b);
        if (offsetFloats < 0 || offsetFloats + floats > _capacityFloats)
        {
            throw new InvalidOperationException($"KV tensor of {floats} floats at {offsetFloats} exceeds the arena's {_capacityFloats}.");
        }

        var keys = new OrtValue[_keys.Length];
        var values = new OrtValue[_values.Length];
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i] = View(_keys[i] + offsetFloats, shape, floats);
            values[i] = View(_values[i] + offsetFloats, shape, floats);
        }

        return (keys, values);
    }

    /// <summary>The whole key or value buffer of a layer, for copying rows inside the arena.</summary>
    public Span<float> Buffer(int layer, bool key) =>
        new(key ? _keys[layer] : _values[layer], checked((int)_capacityFloats));

    public int Layers => _keys.Length;

    private static OrtValue View(float* data, long[] shape, long floats) =>
        OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float, shape, (IntPtr)data, floats * sizeof(float));

    public void Dispose()
    {
        for (var i = 0; i < _keys.Length; i++)
        {
            NativeMemory.AlignedFree(_keys[i]);
            NativeMemory.AlignedFree(_values[i]);
            _keys[i] = null;
            _values[i] = null;
        }
    }
}
