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
    private const uint NonBlocking = 1;
    private static readonly string[] Candidates = ["libcudart.so.13", "libcudart.so.12", "libcudart.so"];

    static CudaRuntime() => NativeLibrary.SetDllImportResolver(typeof(CudaRuntime).Assembly, Resolve);

    public static void SetDevice(int device) => Check(cudaSetDevice(device), "cudaSetDevice");

    /// <summary>Device memory, zeroed (fresh memory may hold NaN bit patterns, and 0 * NaN is NaN under a mask).</summary>
    public static IntPtr Malloc(long bytes)
    {
        Check(cudaMalloc(out var memory, (nuint)Math.Max(bytes, 1)), $"cudaMalloc of {bytes} bytes");
        Check(cudaMemset(memory, 0, (nuint)Math.Max(bytes, 1)), "cudaMemset");
        Check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
        return memory;
    }

    public static void Free(IntPtr memory) => Check(cudaFree(memory), "cudaFree");

    /// <summary>A stream of its own that does not wait for the legacy default stream (other replicas' work on the device).</summary>
    public static IntPtr CreateStream()
    {
        Check(cudaStreamCreateWithFlags(out var stream, NonBlocking), "cudaStreamCreateWithFlags");
        return stream;
    }

    public static void DestroyStream(IntPtr stream) => Check(cudaStreamDestroy(stream), "cudaStreamDestroy");

    public static void Copy2D(IntPtr target, long targetPitch, IntPtr source, long sourcePitch, long width, long height, IntPtr stream) =>
        Check(cudaMemcpy2DAsync(target, (nuint)targetPitch, source, (nuint)sourcePitch, (nuint)width, (nuint)height, DeviceToDevice, stream), "cudaMemcpy2DAsync");

    public static void Clear2D(IntPtr target, long pitch, long width, long height, IntPtr stream) =>
        Check(cudaMemset2DAsync(target, (nuint)pitch, 0, (nuint)width, (nuint)height, stream), "cudaMemset2DAsync");

    public static void Synchronize(IntPtr stream) => Check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");

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
    private static partial int cudaMemcpy2DAsync(IntPtr target, nuint targetPitch, IntPtr source, nuint sourcePitch, nuint width, nuint height, int kind, IntPtr stream);

    [LibraryImport(Library)]
    private static partial int cudaMemset2DAsync(IntPtr memory, nuint pitch, int value, nuint width, nuint height, IntPtr stream);

    [LibraryImport(Library)]
    private static partial int cudaStreamCreateWithFlags(out IntPtr stream, uint flags);

    [LibraryImport(Library)]
    private static partial int cudaStreamDestroy(IntPtr stream);

    [LibraryImport(Library)]
    private static partial int cudaStreamSynchronize(IntPtr stream);

    [LibraryImport(Library)]
    private static partial int cudaDeviceSynchronize();

    [LibraryImport(Library)]
    private static partial int cudaMemGetInfo(out nuint free, out nuint total);

    [LibraryImport(Library)]
    private static partial IntPtr cudaGetErrorString(int error);
}
