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
    private readonly IntPtr _stream;

    public CudaKvStorage(InferenceSession session, int deviceId)
    {
        _deviceId = deviceId;
        MemoryInfo = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, deviceId, OrtMemType.Default);
        _allocator = new OrtAllocator(session, MemoryInfo);
        CudaRuntime.SetDevice(deviceId);
        // Row moves run on a stream of their own: waiting for them never waits for another replica on the same GPU.
        // ONNX Runtime has finished its own stream when a run returns, so the moves see the run's writes.
        _stream = CudaRuntime.CreateStream();
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
        CudaRuntime.Synchronize(_stream);
    }

    public override void Dispose()
    {
        CudaRuntime.SetDevice(_deviceId);
        CudaRuntime.DestroyStream(_stream);
        _allocator.Dispose();
        MemoryInfo.Dispose();
    }

    protected override void Copy(IntPtr target, long targetPitch, IntPtr source, long sourcePitch, long width, long blocks)
    {
        CudaRuntime.SetDevice(_deviceId);
        CudaRuntime.Copy2D(target, targetPitch, source, sourcePitch, width, blocks, _stream);
    }

    protected override void Clear(IntPtr target, long pitch, long width, long blocks)
    {
        CudaRuntime.SetDevice(_deviceId);
        CudaRuntime.Clear2D(target, pitch, width, blocks, _stream);
    }
}
