namespace Appliance.Engine.Pool;

public enum DeviceKind
{
    Cuda,
    Cpu,
}

/// <summary>
/// A place a model replica can run: an NVIDIA GPU (by index, with its memory) or a CPU slot (a share of the machine's
/// cores and memory). Ids are "cuda:&lt;index&gt;" and "cpu:&lt;n&gt;".
/// </summary>
public sealed record PoolDevice(DeviceKind Kind, int Index, string Name, long MemoryTotalBytes, long MemoryUsedBytes, string? Uuid = null, bool Healthy = true, int Threads = 0)
{
    public string Id => $"{(Kind == DeviceKind.Cuda ? "cuda" : "cpu")}:{Index}";

    public long MemoryFreeBytes => Math.Max(0, MemoryTotalBytes - MemoryUsedBytes);
}
