using Appliance.Engine.Pool;
using Appliance.Host.Models;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Host;

/// <summary>Which kind of device a model folder goes to: the model builder's CPU exports to a CPU slot, the rest to a GPU when there is one.</summary>
public sealed class ModelDeviceKindTests : IDisposable
{
    private static readonly PoolDevice Gpu = new(DeviceKind.Cuda, 0, "H200", 141L << 30, 0);
    private static readonly PoolDevice CpuSlot = new(DeviceKind.Cpu, 0, "CPU slot", 64L << 30, 0, Threads: 8);
    private readonly TempFolder _root = new("device-kind");

    [Fact]
    public void A_cpu_export_goes_to_a_cpu_slot_even_on_a_node_with_gpus()
    {
        var (folder, signature) = Write("cpu-fp32", SyntheticModelSpec.TinyLlama); // float32 KV with GroupQueryAttention
        Assert.Equal(DeviceKind.Cpu, ModelMemory.KindFor(folder, signature, "auto", [Gpu, CpuSlot]));
        Assert.Equal(DeviceKind.Cuda, ModelMemory.KindFor(folder, signature, "gpu", [Gpu, CpuSlot])); // the operator's word; the runner then refuses it by name
    }

    [Fact]
    public void A_cuda_export_goes_to_a_gpu_when_the_node_has_a_healthy_one()
    {
        var (folder, signature) = Write("cuda-fp16", SyntheticModelSpec.TinyLlama with { Precision = BoundaryPrecision.Float16 });
        Assert.Equal(DeviceKind.Cuda, ModelMemory.KindFor(folder, signature, "auto", [Gpu, CpuSlot]));
        Assert.Equal(DeviceKind.Cpu, ModelMemory.KindFor(folder, signature, "auto", [Gpu with { Healthy = false }, CpuSlot]));
        Assert.Equal(DeviceKind.Cpu, ModelMemory.KindFor(folder, signature, "cpu", [Gpu, CpuSlot]));
    }

    public void Dispose() => _root.Dispose();

    private (ModelFolder Folder, DecoderSignature Signature) Write(string name, SyntheticModelSpec spec)
    {
        var path = _root.Combine(name);
        SyntheticModelFolder.Write(spec, path);
        var folder = ModelFolder.Open(path);
        return (folder, DecoderSignature.FromFile(folder.DecoderPath, folder.Config.Decoder, folder.Path));
    }
}
