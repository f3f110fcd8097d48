using System.Runtime.CompilerServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Execution.Memory;

/// <summary>
/// Memory on the device a session runs on, for the KV cache and the tensors around it, with the copies the cache
/// needs done there (rows move when sequences join or leave; never a round trip through the host). Every byte copied
/// is counted, so tests can prove that steady decoding copies nothing.
/// </summary>
internal abstract class KvStorage : IDisposable
{
    /// <summary>The addresses of the views this storage made (a view of many GiB has no span to take it from).</summary>
    private static readonly ConditionalWeakTable<OrtValue, StrongBox<IntPtr>> ViewAddresses = new();

    private long _bytesCopied;
    private bool _pending;

    /// <summary>Where tensors over this memory live, for binding them to a session.</summary>
    public abstract OrtMemoryInfo MemoryInfo { get; }

    /// <summary>Allocates tensors on the device that ONNX Runtime frees with the value.</summary>
    public abstract OrtAllocator TensorAllocator { get; }

    /// <summary>"cpu" or "cuda:N".</summary>
    public abstract string Device { get; }

    /// <summary>Bytes copied inside the device since the runner started (row moves, gathers).</summary>
    public long BytesCopied => Interlocked.Read(ref _bytesCopied);

    public abstract IntPtr Allocate(long bytes);

    public abstract void Free(IntPtr memory);

    /// <summary>
    /// Copies <paramref name="blocks"/> blocks of <paramref name="width"/> bytes: block i from
    /// source + i * sourcePitch to target + i * targetPitch (one call per layer, not one per head).
    /// </summary>
    public void CopyBlocks(IntPtr target, long targetPitch, IntPtr source, long sourcePitch, long width, long blocks)
    {
        if (width == 0 || blocks == 0)
        {
            return;
        }

        Copy(target, targetPitch, source, sourcePitch, width, blocks);
        Interlocked.Add(ref _bytesCopied, width * blocks);
        _pending = true;
    }

    /// <summary>Sets <paramref name="blocks"/> blocks of <paramref name="width"/> bytes to zero.</summary>
    public void ClearBlocks(IntPtr target, long pitch, long width, long blocks)
    {
        if (width > 0 && blocks > 0)
        {
            Clear(target, pitch, width, blocks);
            _pending = true;
        }
    }

    /// <summary>Waits until the copies issued since the last run are done, before the next run reads the memory.</summary>
    public void Synchronize()
    {
        if (_pending)
        {
            WaitForDevice();
            _pending = false;
        }
    }

    /// <summary>A tensor view over memory this storage owns (the caller keeps the memory alive).</summary>
    public OrtValue View(IntPtr data, TensorElementType type, long[] shape, long bytes)
    {
        var view = OrtValue.CreateTensorValueWithData(MemoryInfo, type, shape, data, bytes);
        ViewAddresses.Add(view, new StrongBox<IntPtr>(data));
        return view;
    }

    /// <summary>
    /// The address of a tensor's data, without reading it (valid for device memory too): a view's own, or taken from
    /// the tensor, which ONNX Runtime's .NET API hands out as a span (so for tensors under 2 GiB: a prefill's output).
    /// </summary>
    public static unsafe IntPtr Address(OrtValue tensor)
    {
        if (ViewAddresses.TryGetValue(tensor, out var known))
        {
            return known.Value;
        }

        var size = tensor.GetTensorSizeInBytes();
        if (size >= int.MaxValue)
        {
            throw new InvalidOperationException($"A KV tensor of {size} bytes was allocated outside the runner's arenas; its address cannot be taken.");
        }

        var data = tensor.GetTensorMutableRawData();
        fixed (byte* pointer = data)
        {
            return (IntPtr)pointer;
        }
    }

    protected abstract void Copy(IntPtr target, long targetPitch, IntPtr source, long sourcePitch, long width, long blocks);

    protected abstract void Clear(IntPtr target, long pitch, long width, long blocks);

    protected abstract void WaitForDevice();

    public abstract void Dispose();
}
