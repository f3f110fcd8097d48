using Appliance.Engine.Pool;
using Appliance.Host.Options;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Host.Models;

/// <summary>What one replica of a model needs, and what placement reserves for it.</summary>
internal sealed record ReplicaPlan(MemoryPlan Plan, DecoderSignature Signature, long PlacedBytes);

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
        var plan = MemoryPlan.ForDevices(folder, signature, options.MaxBatchSize, options.ContextLength, options.LogitsBudgetBytes, options.Replicas, available, out note, options.PrefixCacheTokens);
        return new ReplicaPlan(plan, signature, options.MemoryBytes ?? plan.DeviceBytes);
    }
}
