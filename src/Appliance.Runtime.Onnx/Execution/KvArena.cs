using Appliance.Runtime.Onnx.Execution.Memory;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// Preallocated device memory for one batch's KV cache: a key and a value buffer per layer, each large enough for
/// [max_batch, kv_heads, context, head_size] of the model's KV element type. Tensors of any smaller shape are views
/// over it, so the cache's memory is bounded, allocated once, and stays where the model runs.
/// </summary>
internal sealed class KvArena : IDisposable
{
    private readonly KvStorage _storage;
    private readonly IntPtr[] _keys;
    private readonly IntPtr[] _values;
    private readonly long _capacityElements;

    public KvArena(KvStorage storage, int layers, long capacityElements, TensorElementType elementType)
    {
        _storage = storage;
        _capacityElements = capacityElements;
        ElementType = elementType;
        ElementSize = DecoderSignature.ElementSize(elementType);
        _keys = new IntPtr[layers];
        _values = new IntPtr[layers];
        try
        {
            for (var i = 0; i < layers; i++)
            {
                _keys[i] = storage.Allocate(capacityElements * ElementSize);
                _values[i] = storage.Allocate(capacityElements * ElementSize);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The group whose tensors live here now; null when the arena is free.</summary>
    public KvGroup? Owner { get; set; }

    public bool IsFree => Owner is null || Owner.LiveRows == 0;

    public TensorElementType ElementType { get; }

    public int ElementSize { get; }

    public long CapacityBytes => _capacityElements * ElementSize * 2 * _keys.Length;

    public int Layers => _keys.Length;

    /// <summary>Creates key and value tensor views of the given shape over this arena, from an offset in elements.</summary>
    public (OrtValue[] Keys, OrtValue[] Values) Views(long[] shape, long offsetElements = 0)
    {
        var elements = shape.Aggregate(1L, (a, b) => a * b);
        if (offsetElements < 0 || offsetElements + elements > _capacityElements)
        {
            throw new InvalidOperationException($"KV tensor of {elements} elements at {offsetElements} exceeds the arena's {_capacityElements}.");
        }

        var keys = new OrtValue[_keys.Length];
        var values = new OrtValue[_values.Length];
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i] = _storage.View(Address(i, key: true) + (nint)(offsetElements * ElementSize), ElementType, shape, elements * ElementSize);
            values[i] = _storage.View(Address(i, key: false) + (nint)(offsetElements * ElementSize), ElementType, shape, elements * ElementSize);
        }

        return (keys, values);
    }

    /// <summary>The start of a layer's key or value buffer, for copies inside the arena.</summary>
    public IntPtr Address(int layer, bool key) => key ? _keys[layer] : _values[layer];

    public void Dispose()
    {
        for (var i = 0; i < _keys.Length; i++)
        {
            if (_keys[i] != IntPtr.Zero)
            {
                _storage.Free(_keys[i]);
                _keys[i] = IntPtr.Zero;
            }

            if (_values[i] != IntPtr.Zero)
            {
                _storage.Free(_values[i]);
                _values[i] = IntPtr.Zero;
            }
        }
    }
}
