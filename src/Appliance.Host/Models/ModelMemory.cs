using Appliance.Engine.Pool;
using Appliance.Host.Options;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Host.Models;

/// <summary>What one replica of a model needs, what placement reserves for it, and the kind of device it goes to.</summary>
internal sealed record ReplicaPlan(MemoryPlan Plan, DecoderSignature Signature, long PlacedBytes, DeviceKind Kind);

/// <summary>Plans a replica's memory for placement, before any session exists.</summary>
internal static class ModelMemory
{
    /// <summary>
    /// The plan from the model file's own signature (the KV element type) and the node's devices; the operator's
    /// declared MemoryBytes, when set, is what placement reserves.
    /// </summary>
    /// <param name="available">Each device with the bytes still free on it (less what other models placed there hold).</param>
    public static ReplicaPlan Plan(ModelFolder folder, ModelOptions options, IReadOnlyList<(PoolDevice Device, long AvailableBytes)> available, out string? note)
    {
        var signature = DecoderSignature.FromFile(folder.DecoderPath, folder.Config.Decoder, folder.Path);
        var kind = KindFor(folder, signature, options.Device, available.Select(a => a.Device));
        var suitable = available.Where(a => a.Device.Kind == kind).ToList();
        var plan = MemoryPlan.ForDevices(folder, signature, options.MaxBatchSize, options.ContextLength, options.LogitsBudgetBytes, options.Replicas, suitable, out note, options.PrefixCacheTokens);
        return new ReplicaPlan(plan, signature, options.MemoryBytes ?? plan.DeviceBytes, kind);
    }

    /// <summary>
    /// The kind of device a model's replicas go to: what <see cref="ModelOptions.Device"/> says, or, on auto, a CPU slot
    /// for the model builder's CPU exports (a float32 KV cache with GroupQueryAttention, which ONNX Runtime runs on the
    /// CPU only) and a GPU for everything else when the node has a healthy one.
    /// </summary>
    public static DeviceKind KindFor(ModelFolder folder, DecoderSignature signature, string device, IEnumerable<PoolDevice> devices) => device.ToLowerInvariant() switch
    {
        "cpu" => DeviceKind.Cpu,
        "gpu" => DeviceKind.Cuda,
        _ when CpuOnlyExport.Is(signature, Runtime.Onnx.OnnxFormat.OnnxGraphSignature.Read(folder.DecoderPath)) => DeviceKind.Cpu,
        _ => devices.Any(d => d.Healthy && d.Kind == DeviceKind.Cuda) ? DeviceKind.Cuda : DeviceKind.Cpu,
    };


}
