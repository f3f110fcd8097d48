namespace Appliance.Engine.Pool;

/// <summary>
/// A model's wish: how many replicas, how much device memory each needs, and the kind of device it runs on (null: any;
/// a CPU export's attention runs on the CPU only, and a GPU export is planned for a GPU).
/// </summary>
public sealed record ReplicaDemand(string Model, int Replicas, long MemoryBytes, DeviceKind? Kind = null);

/// <summary>One replica of a model on one device.</summary>
public sealed record ReplicaPlacement(string Model, int Replica, string DeviceId);

/// <summary>A device with room for the next replica.</summary>
public sealed record PlacementCandidate(PoolDevice Device, long FreeBytes, int Replicas);

/// <summary>No device had room; the message names the model, what it needs and what each device has left.</summary>
public sealed class PlacementException(string message) : Exception(message);

/// <summary>
/// How replicas are put on devices (a strategy chosen by its name in configuration). Every strategy keeps replicas
/// that still fit where they are, never puts two replicas of one model on one device, and refuses clearly when a model
/// does not fit.
/// </summary>
public interface IPlacementStrategy
{
    string Name { get; }

    /// <summary>Among devices with room (with their free memory and how many replicas they hold), the one the next replica goes to.</summary>
    PoolDevice Choose(IReadOnlyList<PlacementCandidate> candidates);
}

/// <summary>Fill the fullest device that still fits first (best fit): keeps whole devices free for large models.</summary>
public sealed class PackPlacement : IPlacementStrategy
{
    public string Name => "pack";

    public PoolDevice Choose(IReadOnlyList<PlacementCandidate> candidates) =>
        candidates.OrderBy(c => c.FreeBytes).ThenBy(c => c.Device.Id, StringComparer.Ordinal).First().Device;
}

/// <summary>Put each replica on the device holding the fewest replicas, the emptiest among those: spreads the load.</summary>
public sealed class SpreadPlacement : IPlacementStrategy
{
    public string Name => "spread";

    public PoolDevice Choose(IReadOnlyList<PlacementCandidate> candidates) =>
        candidates.OrderBy(c => c.Replicas).ThenByDescending(c => c.FreeBytes).ThenBy(c => c.Device.Id, StringComparer.Ordinal).First().Device;
}

/// <summary>Computes a placement of every model's replicas on the current devices.</summary>
public static class Placer
{
    public static IReadOnlyList<IPlacementStrategy> Strategies { get; } = [new PackPlacement(), new SpreadPlacement()];

    public static IPlacementStrategy Strategy(string name) =>
        Strategies.FirstOrDefault(s => s.Name == name)
        ?? throw new ArgumentException($"unknown placement strategy '{name}'; choose {string.Join(" or ", Strategies.Select(s => s.Name))}", nameof(name));

    /// <summary>
    /// Places every demand on healthy devices. Replicas in <paramref name="current"/> whose device is still there and
    /// still has room stay put (a reload or a vanished device moves only what it must); the rest go where the strategy says.
    /// </summary>
    public static IReadOnlyList<ReplicaPlacement> Place(
        IReadOnlyList<ReplicaDemand> demands, IReadOnlyList<PoolDevice> devices, IPlacementStrategy strategy, IReadOnlyList<ReplicaPlacement>? current = null)
    {
        var healthy = devices.Where(d => d.Healthy).ToDictionary(d => d.Id, StringComparer.Ordinal);
        bool Suits(ReplicaDemand demand, PoolDevice device) => demand.Kind is not { } kind || device.Kind == kind;
        var free = healthy.Values.ToDictionary(d => d.Id, d => d.MemoryFreeBytes, StringComparer.Ordinal);
        var placements = new List<ReplicaPlacement>();
        var ordered = demands.OrderByDescending(d => d.MemoryBytes).ThenBy(d => d.Model, StringComparer.Ordinal).ToList(); // largest first: fewest places to go
        foreach (var demand in ordered.Where(d => d.Replicas < 1 || d.MemoryBytes < 0))
        {
            throw new PlacementException($"model '{demand.Model}': replicas must be at least 1 and memory not negative");
        }

        // First every replica that may stay where it is, so that the new ones are placed around them.
        foreach (var demand in ordered)
        {
            var used = new HashSet<string>(StringComparer.Ordinal);
            foreach (var kept in (current ?? []).Where(p => p.Model == demand.Model && p.Replica < demand.Replicas).OrderBy(p => p.Replica))
            {
                if (healthy.TryGetValue(kept.DeviceId, out var device) && Suits(demand, device) && used.Add(kept.DeviceId) && free[kept.DeviceId] >= demand.MemoryBytes)
                {
                    free[kept.DeviceId] -= demand.MemoryBytes;
                    placements.Add(kept);
                }
            }
        }

        foreach (var demand in ordered)
        {
            var used = placements.Where(p => p.Model == demand.Model).Select(p => p.DeviceId).ToHashSet(StringComparer.Ordinal);
            var placed = placements.Where(p => p.Model == demand.Model).Select(p => p.Replica).ToHashSet();
            for (var replica = 0; replica < demand.Replicas; replica++)
            {
                if (placed.Contains(replica))
                {
                    continue;
                }

                var candidates = healthy.Values.Where(d => Suits(demand, d) && !used.Contains(d.Id) && free[d.Id] >= demand.MemoryBytes)
                    .Select(d => new PlacementCandidate(d, free[d.Id], placements.Count(p => p.DeviceId == d.Id))).ToList();
                if (candidates.Count == 0)
                {
                    throw new PlacementException(NoRoom(demand, replica, healthy.Values.Where(d => Suits(demand, d)), free, used));
                }

                var device = strategy.Choose(candidates);
                free[device.Id] -= demand.MemoryBytes;
                used.Add(device.Id);
                placements.Add(new ReplicaPlacement(demand.Model, replica, device.Id));
            }
        }

        return [.. placements.OrderBy(p => p.Model, StringComparer.Ordinal).ThenBy(p => p.Replica)];
    }

    private static string NoRoom(ReplicaDemand demand, int replica, IEnumerable<PoolDevice> devices, Dictionary<string, long> free, HashSet<string> used)
    {
        var state = string.Join(", ", devices.OrderBy(d => d.Id, StringComparer.Ordinal)
            .Select(d => used.Contains(d.Id) ? $"{d.Id} (holds replica of it already)" : $"{d.Id} ({Gib(free[d.Id])} free)"));
        var kind = demand.Kind switch
        {
            DeviceKind.Cpu => "CPU slot",
            DeviceKind.Cuda => "GPU",
            _ => "device",
        };
        var none = demand.Kind switch
        {
            DeviceKind.Cpu => "this node has no CPU slot (Pool:CpuSlots gives a node with GPUs some)",
            DeviceKind.Cuda => "this node has no healthy GPU (a model's Device setting cpu puts it on a CPU slot)",
            _ => "no healthy device",
        };
        return $"model '{demand.Model}' needs {demand.Replicas} replica(s) of {Gib(demand.MemoryBytes)}; replica {replica + 1} fits on no {kind}: "
            + (state.Length == 0 ? none : state);
    }

    private static string Gib(long bytes) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024 * 1024):F1} GiB");
}
