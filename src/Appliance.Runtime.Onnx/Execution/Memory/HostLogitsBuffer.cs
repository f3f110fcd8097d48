using System.Buffers;
using System.Runtime.CompilerServices;
using Microsoft.ML.OnnxRuntime;

namespace Appliance.Runtime.Onnx.Execution.Memory;

/// <summary>
/// Host memory for the rows of logits the sampler reads: [max_batch, vocabulary] float32. Pinned memory from the CUDA
/// provider when the model runs there (the device-to-host copy is then a direct DMA), plain pinned memory otherwise.
/// </summary>
internal sealed unsafe class HostLogitsBuffer : MemoryManager<float>
{
    private readonly float[]? _managed;
    private readonly OrtValue? _pinned;
    private readonly OrtAllocator? _allocator;
    private readonly IntPtr _address;
    private readonly int _length;

    private HostLogitsBuffer(int length, float[]? managed, OrtAllocator? allocator, OrtValue? pinned, OrtMemoryInfo memoryInfo)
    {
        _length = length;
        _managed = managed;
        _allocator = allocator;
        _pinned = pinned;
        MemoryInfo = memoryInfo;
        _address = pinned is not null ? KvStorage.Address(pinned) : (IntPtr)Unsafe.AsPointer(ref managed![0]);
    }

    public OrtMemoryInfo MemoryInfo { get; }

    /// <summary>Whether the memory is the CUDA provider's pinned host memory.</summary>
    public bool IsDevicePinned => _pinned is not null;

    public static HostLogitsBuffer Create(int length, InferenceSession session, int? cudaDevice)
    {
        // Some ONNX Runtime versions register the CUDA provider's pinned allocator under device 0 whatever GPU the
        // session runs on, so a replica on GPU 1 asks for device 0's after its own (a session only hands out its own
        // allocators, so either is right). Pinned memory serves every GPU: under unified addressing (every 64-bit
        // Linux) cudaMallocHost memory is portable.
        foreach (var device in cudaDevice is { } id ? (id == 0 ? [0] : new[] { id, 0 }) : [])
        {
            var info = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA_PINNED, OrtAllocatorType.DeviceAllocator, device, OrtMemType.CpuOutput);
            try
            {
                var allocator = new OrtAllocator(session, info);
                var pinned = OrtValue.CreateAllocatedTensorValue(allocator, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [length]);
                return new HostLogitsBuffer(length, null, allocator, pinned, info);
            }
            catch (OnnxRuntimeException)
            {
                info.Dispose(); // no pinned allocator under this id: plain host memory works, only slower
            }
        }

        return new HostLogitsBuffer(length, GC.AllocateArray<float>(Math.Max(length, 1), pinned: true), null, null, OrtMemoryInfo.DefaultInstance);
    }

    /// <summary>
    /// Puts blocks of rows written one after the other in <paramref name="written"/>'s order (each a caller's rows) into
    /// the callers' order, caller 0 first.
    /// </summary>
    public void Reorder(IReadOnlyList<(int Caller, int Rows)> written, int width)
    {
        var total = written.Sum(w => w.Rows) * width;
        var rowsOf = new int[written.Count];
        foreach (var (caller, rows) in written)
        {
            rowsOf[caller] = rows;
        }

        var destination = new int[written.Count];
        for (var caller = 1; caller < destination.Length; caller++)
        {
            destination[caller] = destination[caller - 1] + (rowsOf[caller - 1] * width);
        }

        var copy = ArrayPool<float>.Shared.Rent(total);
        try
        {
            var span = GetSpan()[..total];
            span.CopyTo(copy);
            var source = 0;
            foreach (var (caller, rows) in written)
            {
                copy.AsSpan(source, rows * width).CopyTo(span[destination[caller]..]);
                source += rows * width;
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(copy);
        }
    }

    /// <summary>A float32 tensor view of <paramref name="rows"/> rows of <paramref name="width"/>, from row <paramref name="firstRow"/>.</summary>
    public OrtValue View(int firstRow, int rows, int width) =>
        OrtValue.CreateTensorValueWithData(
            MemoryInfo, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [rows, width],
            _address + (nint)((long)firstRow * width * sizeof(float)), (long)rows * width * sizeof(float));

    public override Span<float> GetSpan() => new((void*)_address, _length);

    public override MemoryHandle Pin(int elementIndex = 0) => new((float*)_address + elementIndex);

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _pinned?.Dispose();
            _allocator?.Dispose();
            if (_pinned is not null)
            {
                MemoryInfo.Dispose();
            }
        }
    }
}
