using Appliance.Engine;
using Appliance.Engine.Pool;

namespace Appliance.Host.Models;

/// <summary>A loaded model's replicas (each an engine over its own ONNX Runtime session) and the router in front of them.</summary>
internal sealed class ModelDeployment(string id, long memoryBytes, IReadOnlyList<ReplicaPlacement> placements, IReadOnlyList<(Replica Replica, IModelRunner Runner)> replicas, DateTimeOffset loadedAt) : IDisposable
{
    public string Id { get; } = id;

    public long MemoryBytes { get; } = memoryBytes;

    public IReadOnlyList<ReplicaPlacement> Placements { get; } = placements;

    public ReplicaRouter Router { get; } = new([.. replicas.Select(r => r.Replica)]);

    public DateTimeOffset LoadedAt { get; } = loadedAt;

    public bool Idle => Router.QueuedRequests + Router.RunningRequests == 0;

    /// <summary>Stops each engine (cancelling what still runs), then its runner: the engine thread must end before the session goes.</summary>
    public void Dispose()
    {
        foreach (var (replica, runner) in replicas)
        {
            replica.Engine.Dispose();
            runner.Dispose();
        }
    }
}
