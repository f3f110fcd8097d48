namespace Appliance.Engine.Pool;

/// <summary>Which devices the pool may use (configuration "Pool").</summary>
public sealed record DeviceInventoryOptions
{
    /// <summary>GPUs to use, by index or UUID; empty: every GPU found.</summary>
    public IReadOnlyList<string> Include { get; init; } = [];

    /// <summary>GPUs never to use, by index or UUID (for example one kept for another workload).</summary>
    public IReadOnlyList<string> Exclude { get; init; } = [];

    /// <summary>CPU slots; 0: one slot when no GPU is usable, none otherwise.</summary>
    public int CpuSlots { get; init; }

    /// <summary>Threads of each CPU slot; 0: the machine's cores shared out evenly.</summary>
    public int ThreadsPerCpuSlot { get; init; }

    /// <summary>Memory each CPU slot may hold; 0: the memory available to the process shared out evenly.</summary>
    public long CpuSlotMemoryBytes { get; init; }
}

/// <summary>
/// The devices found, where the GPU list came from ("nvml", "nvidia-smi" or "none"), and the Include/Exclude names that
/// matched no GPU found (a GPU fallen off the bus, another node's UUID: worth a warning, not a refusal).
/// </summary>
public sealed record DeviceInventory(IReadOnlyList<PoolDevice> Devices, string Source, IReadOnlyList<string> Unmatched)
{
    /// <summary>
    /// GPUs from NVML, else from nvidia-smi, else none; filtered by the configuration; CPU slots added as configured
    /// (and one when no GPU is usable, so that a machine without GPUs still serves).
    /// </summary>
    public static DeviceInventory Discover(
        DeviceInventoryOptions options,
        Func<IReadOnlyList<PoolDevice>?> nvml,
        Func<IReadOnlyList<PoolDevice>?> nvidiaSmi,
        int processorCount,
        long availableMemoryBytes)
    {
        var (gpus, source) = nvml() is { } fromNvml ? (fromNvml, "nvml") : nvidiaSmi() is { } fromSmi ? (fromSmi, "nvidia-smi") : ([], "none");
        // A name that is no index or UUID ("GPU0", "cuda:0") can never match: it would leave the node on a CPU slot, or
        // on a GPU kept for other work, without a word.
        if (options.Include.Concat(options.Exclude).FirstOrDefault(name => !WellFormed(name)) is { } malformed)
        {
            throw new InvalidOperationException(
                $"Pool:{(options.Include.Contains(malformed) ? "Include" : "Exclude")} names '{malformed}': name GPUs by index (0, 1, ...) or UUID (GPU-..., MIG-...){(gpus.Count > 0 ? $"; this node has {string.Join(", ", gpus.Select(g => $"{g.Index} {g.Uuid}"))}" : string.Empty)}");
        }

        var unmatched = gpus.Count == 0 ? [] : options.Include.Concat(options.Exclude).Where(name => !gpus.Any(g => Named(g, [name]))).ToList();

        var usable = gpus
            .Where(g => options.Include.Count == 0 || Named(g, options.Include))
            .Where(g => !Named(g, options.Exclude))
            .ToList();
        var slots = options.CpuSlots > 0 ? options.CpuSlots : usable.Any(g => g.Healthy) ? 0 : 1;
        for (var slot = 0; slot < slots; slot++)
        {
            var threads = options.ThreadsPerCpuSlot > 0 ? options.ThreadsPerCpuSlot : Math.Max(1, processorCount / slots);
            var memory = options.CpuSlotMemoryBytes > 0 ? options.CpuSlotMemoryBytes : availableMemoryBytes / slots;
            usable.Add(new PoolDevice(DeviceKind.Cpu, slot, $"CPU slot ({threads} threads)", memory, 0, Threads: threads));
        }

        return new DeviceInventory(usable, source, unmatched);
    }

    /// <summary>The machine's own GPUs: NVML first (exact, no process), nvidia-smi as the fallback.</summary>
    public static DeviceInventory DiscoverHere(DeviceInventoryOptions options) => Discover(
        options,
        () => NvmlInventory.Query(out _),
        () => NvidiaSmiInventory.Query(TimeSpan.FromSeconds(10)),
        Environment.ProcessorCount,
        GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);

    private static bool WellFormed(string name) =>
        int.TryParse(name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _)
        || name.StartsWith("GPU-", StringComparison.OrdinalIgnoreCase) || name.StartsWith("MIG-", StringComparison.OrdinalIgnoreCase);

    private static bool Named(PoolDevice gpu, IReadOnlyList<string> names) =>
        names.Any(name => name == gpu.Index.ToString(System.Globalization.CultureInfo.InvariantCulture) || string.Equals(name, gpu.Uuid, StringComparison.OrdinalIgnoreCase));
}
