using System.Runtime.InteropServices;
using System.Text;

namespace Appliance.Engine.Pool;

/// <summary>
/// GPUs through NVIDIA's management library (libnvidia-ml.so.1, installed with the driver): exact memory in bytes and
/// no process to start. Returns null with a reason when the library or the driver is not there.
/// </summary>
public static partial class NvmlInventory
{
    private const string Library = "libnvidia-ml.so.1";
    private const int Success = 0;

    public static IReadOnlyList<PoolDevice>? Query(out string? unavailableReason)
    {
        try
        {
            var init = nvmlInit_v2();
            if (init != Success)
            {
                unavailableReason = $"nvmlInit_v2 returned {init}";
                return null;
            }
        }
        catch (Exception exception) when (exception is DllNotFoundException or EntryPointNotFoundException)
        {
            unavailableReason = $"{Library} is not available ({exception.GetType().Name})";
            return null;
        }

        try
        {
            var devices = new List<PoolDevice>();
            if (nvmlDeviceGetCount_v2(out var count) != Success)
            {
                unavailableReason = "nvmlDeviceGetCount_v2 failed";
                return null;
            }

            for (var index = 0u; index < count; index++)
            {
                if (nvmlDeviceGetHandleByIndex_v2(index, out var device) != Success)
                {
                    devices.Add(new PoolDevice(DeviceKind.Cuda, (int)index, "unreadable device", 0, 0, Healthy: false));
                    continue;
                }

                var memoryRead = nvmlDeviceGetMemoryInfo(device, out var memory) == Success;
                devices.Add(new PoolDevice(DeviceKind.Cuda, (int)index, Text(device, nvmlDeviceGetName) ?? "NVIDIA GPU",
                    (long)memory.Total, (long)memory.Used, Text(device, nvmlDeviceGetUUID), Healthy: memoryRead));
            }

            unavailableReason = null;
            return devices;
        }
        finally
        {
            _ = nvmlShutdown();
        }
    }

    private static string? Text(nint device, Func<nint, byte[], uint, int> read)
    {
        var buffer = new byte[96];
        return read(device, buffer, (uint)buffer.Length) == Success ? Encoding.ASCII.GetString(buffer, 0, Math.Max(0, Array.IndexOf(buffer, (byte)0))) : null;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct NvmlMemory
    {
        public ulong Total;
        public ulong Free;
        public ulong Used;
    }

    [LibraryImport(Library)]
    private static partial int nvmlInit_v2();

    [LibraryImport(Library)]
    private static partial int nvmlShutdown();

    [LibraryImport(Library)]
    private static partial int nvmlDeviceGetCount_v2(out uint count);

    [LibraryImport(Library)]
    private static partial int nvmlDeviceGetHandleByIndex_v2(uint index, out nint device);

    [LibraryImport(Library)]
    private static partial int nvmlDeviceGetMemoryInfo(nint device, out NvmlMemory memory);

    [LibraryImport(Library)]
    private static partial int nvmlDeviceGetName(nint device, [Out] byte[] name, uint length);

    [LibraryImport(Library)]
    private static partial int nvmlDeviceGetUUID(nint device, [Out] byte[] uuid, uint length);
}
