using Microsoft.ML.OnnxRuntime;

namespace Appliance.Runtime.Onnx.Execution.Memory;

/// <summary>
/// KV memory on a CUDA device: the arenas come from cudaMalloc (one allocation per layer can exceed the 4 GiB that
/// ONNX Runtime's allocator API takes), smaller tensors from the session's own CUDA allocator, copies stay on the device.
/// </summary>
internal sealed class CudaKvStorage : KvStorage
{
    private readonly int _deviceId;
    private readonly OrtAllocator _allocator;

    public CudaKvStorage(InferenceSession session, int deviceId)
    {
        _deviceId = deviceId;
        MemoryInfo = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, deviceId, OrtMemType.Default);
        _allocator = new OrtAllocator(session, MemoryInfo);
    }

    public override OrtMemoryInfo MemoryInfo { get; }

    public override OrtAllocator TensorAllocator => _allocator;

    public override string Device => $"cuda:{_deviceId}";

    public override IntPtr Allocate(long bytes)
    {
        CudaRuntime.SetDevice(_deviceId);
        return CudaRuntime.Malloc(bytes);
    }

    public override void Free(IntPtr memory)
    {
        CudaRuntime.SetDevice(_deviceId);
        CudaRuntime.Free(memory);
    }

    protected override void WaitForDevice()
    {
        CudaRuntime.SetDevice(_deviceId);
        CudaRuntime.Synchronize();
    }

    public override void Dispose()
    {
        _allocator.Dispose();
        MemoryInfo.Dispose();
    }

    protected override void Copy(IntPtr target, long targetPitch, IntPtr source, long sourcePitch, long width, long blocks)
    {
        CudaRuntime.SetDevice(_deviceId);
        CudaRuntime.Copy2D(target, targetPitch, source, sourcePitch, width, blocks);
    }

    protected override void Clear(IntPtr target, long pitch, long width, long blocks)
    {
        CudaRuntime.SetDevice(_deviceId);
        CudaRuntime.Clear2D(target, pitch, width, blocks);
    }
}
