using System.Reflection;
using System.Runtime.InteropServices;

namespace Appliance.Runtime.Onnx.Execution.Memory;

/// <summary>
/// The few CUDA runtime calls the KV cache needs beyond ONNX Runtime (device allocation, strided device-to-device
/// copies, memset, synchronisation), from the libcudart that ONNX Runtime's CUDA provider itself loads.
/// </summary>
internal static partial class CudaRuntime
{
    private const string Library = "cudart";
    private const int DeviceToDevice = 3;
    private static readonly string[] Candidates = ["libcudart.so.13", "libcudart.so.12", "libcudart.so"];

    static CudaRuntime() => NativeLibrary.SetDllImportResolver(typeof(CudaRuntime).Assembly, Resolve);

    public static void SetDevice(int device) => Check(cudaSetDevice(device), "cudaSetDevice");

    public static IntPtr Malloc(long bytes)
    {
        Check(cudaMalloc(out var memory, (nuint)Math.Max(bytes, 1)), $"cudaMalloc of {bytes} bytes");
        Check(cudaMemset(memory, 0, (nuint)Math.Max(bytes, 1)), "cudaMemset");
        return memory;
    }

    public static void Free(IntPtr memory) => Check(cudaFree(memory), "cudaFree");

    public static void Copy2D(IntPtr target, long targetPitch, IntPtr source, long sourcePitch, long width, long height) =>
        Check(cudaMemcpy2D(target, (nuint)targetPitch, source, (nuint)sourcePitch, (nuint)width, (nuint)height, DeviceToDevice), "cudaMemcpy2D");

    public static void Clear2D(IntPtr target, long pitch, long width, long height) =>
        Check(cudaMemset2D(target, (nuint)pitch, 0, (nuint)width, (nuint)height), "cudaMemset2D");

    public static void Synchronize() => Check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");

    public static (long Free, long Total) MemoryInfo()
    {
        Check(cudaMemGetInfo(out var free, out var total), "cudaMemGetInfo");
        return ((long)free, (long)total);
    }

    private static void Check(int error, string call)
    {
        if (error != 0)
        {
            var message = Marshal.PtrToStringAnsi(cudaGetErrorString(error)) ?? $"error {error}";
            throw new InvalidOperationException($"{call} failed: {message} ({error})");
        }
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Library)
        {
            return IntPtr.Zero;
        }

        foreach (var candidate in Candidates)
        {
            if (NativeLibrary.TryLoad(candidate, assembly, path, out var handle))
            {
                return handle;
            }
        }

        throw new DllNotFoundException($"the CUDA runtime ({string.Join(", ", Candidates)}) cannot be loaded");
    }

    [LibraryImport(Library)]
    private static partial int cudaSetDevice(int device);

    [LibraryImport(Library)]
    private static partial int cudaMalloc(out IntPtr memory, nuint size);

    [LibraryImport(Library)]
    private static partial int cudaFree(IntPtr memory);

    [LibraryImport(Library)]
    private static partial int cudaMemset(IntPtr memory, int value, nuint count);

    [LibraryImport(Library)]
    private static partial int cudaMemcpy2D(IntPtr target, nuint targetPitch, IntPtr source, nuint sourcePitch, nuint width, nuint height, int kind);

    [LibraryImport(Library)]
    private static partial int cudaMemset2D(IntPtr memory, nuint pitch, int value, nuint width, nuint height);

    [LibraryImport(Library)]
    private static partial int cudaDeviceSynchronize();

    [LibraryImport(Library)]
    private static partial int cudaMemGetInfo(out nuint free, out nuint total);

    [LibraryImport(Library)]
    private static partial IntPtr cudaGetErrorString(int error);
}
