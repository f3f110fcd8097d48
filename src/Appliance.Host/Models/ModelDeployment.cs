using Appliance.Engine;
using Appliance.Engine.Pool;

namespace Appliance.Host.Models;

/// <summary>A loaded model's replicas (each an engine over its own ONNX Runtime session) and the router in front of them.</summary>
internal sealed class ModelDeployment(string id, ReplicaPlan plan, int maxBatchSize, IReadOnlyList<ReplicaPlacement> placements, IReadOnlyList<(Replica Replica, IModelRunner Runner)> replicas, DateTimeOffset loadedAt) : IDisposable
{
    public string Id { get; } = id;

    /// <summary>What placement reserved on each replica's device.</summary>
    public long MemoryBytes { get; } = plan.PlacedBytes;

    /// <summary>The kind of device its replicas run on (placement keeps them on that kind).</summary>
    public DeviceKind Kind { get; } = plan.Kind;

    public Api.Models.ReplicaMemory Memory { get; } = new(
        plan.PlacedBytes, plan.Plan.HostBytes, plan.Plan.WeightsBytes, plan.Plan.KvCacheBytes, plan.Plan.LogitsBytes, plan.Plan.RuntimeBytes,
        Runtime.Onnx.OnnxFormat.OnnxTypes.Name(plan.Signature.KvType), plan.Plan.ContextLength, maxBatchSize);

    public IReadOnlyList<ReplicaPlacement> Placements { get; } = placements;

    public ReplicaRouter Router { get; } = new([.. replicas.Select(r => r.Replica)]);

    public DateTimeOffset LoadedAt { get; } = loadedAt;

    public bool Idle => Router.QueuedRequests + Router.RunningRequests == 0;

    /// <summary>
    /// Stops each engine (interrupting its run, cancelling what still runs), then its runner: the engine thread must end
    /// before the session goes. A runner whose thread would not stop is left alive (the engine logs it).
    /// </summary>
    public void Dispose()
    {
        foreach (var (replica, runner) in replicas)
        {
            if (replica.Engine.Stop())
            {
                runner.Dispose();
            }
        }
    }
}
