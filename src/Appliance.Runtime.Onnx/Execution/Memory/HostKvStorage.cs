using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace Appliance.Runtime.Onnx.Execution.Memory;

/// <summary>KV memory for the CPU provider: aligned native memory, copies with memmove.</summary>
internal sealed unsafe class HostKvStorage : KvStorage
{
    public override OrtMemoryInfo MemoryInfo => OrtMemoryInfo.DefaultInstance;

    public override OrtAllocator TensorAllocator => OrtAllocator.DefaultInstance;

    public override string Device => "cpu";

    public override IntPtr Allocate(long bytes)
    {
        var memory = NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        // Fresh memory may hold NaN bit patterns; masked positions are multiplied by 0, and 0 * NaN is NaN.
        NativeMemory.Clear(memory, (nuint)Math.Max(bytes, 1));
        return (IntPtr)memory;
    }

    public override void Free(IntPtr memory) => NativeMemory.AlignedFree((void*)memory);

    protected override void WaitForDevice()
    {
    }

    public override void Dispose()
    {
    }

    protected override void Copy(IntPtr target, long targetPitch, IntPtr source, long sourcePitch, long width, long blocks)
    {
        for (long i = 0; i < blocks; i++)
        {
            // memmove semantics: overlapping blocks (a row moving within one buffer) are safe.
            Buffer.MemoryCopy((byte*)source + (i * sourcePitch), (byte*)target + (i * targetPitch), width, width);
        }
    }

    protected override void Clear(IntPtr target, long pitch, long width, long blocks)
    {
        for (long i = 0; i < blocks; i++)
        {
            NativeMemory.Clear((byte*)target + (i * pitch), (nuint)width);
        }
    }
}
