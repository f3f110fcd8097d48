namespace Appliance.Api.Models;

/// <summary>One running replica of a model, as the pool view, the metrics and the router see it.</summary>
public sealed record ReplicaState(
    string Model,
    int Replica,
    string DeviceId,
    bool Healthy,
    int Running,
    int Queued,
    int KvCacheUsedTokens,
    int KvCacheCapacityTokens,
    long MemoryBytes,
    DateTimeOffset LoadedAt,
    long Preemptions = 0,
    ReplicaMemory? Memory = null,
    long Restarts = 0)
{
    /// <summary>Prompt tokens looked up in the replica's prefix cache, and how many were found there.</summary>
    public PrefixCacheState PrefixCache { get; init; } = new(0, 0, 0);

    /// <summary>Tokens drafted by prompt lookup, and how many the model confirmed (speculative decoding).</summary>
    public (long Drafted, long Accepted) SpeculativeTokens { get; init; }

    /// <summary>Steps run in two because the rows lay on both sides of a LongRoPE model's rotary switch.</summary>
    public long SplitSteps { get; init; }
}

/// <summary>A replica's prefix cache: its size, and the prompt tokens looked up and found since it started.</summary>
public sealed record PrefixCacheState(long CapacityTokens, long LookupTokens, long HitTokens)
{
    /// <summary>Share of looked-up prompt tokens served from the cache; null before any lookup.</summary>
    public double? HitRate => LookupTokens == 0 ? null : (double)HitTokens / LookupTokens;
}

/// <summary>
/// Where a replica's memory goes: on its device the weights, the KV cache (its element type, for the context and batch
/// it was sized for), the largest logits tensor a run may produce and a margin for the runtime; on the host the
/// logits rows the sampler reads (everything, on a CPU slot).
/// </summary>
public sealed record ReplicaMemory(
    long DeviceBytes,
    long HostBytes,
    long WeightsBytes,
    long KvCacheBytes,
    long LogitsBytes,
    long RuntimeBytes,
    string KvType,
    int ContextLength,
    int MaxBatchSize);

/// <summary>How an administrative model action ended.</summary>
public enum ModelActionOutcome
{
    Done,

    /// <summary>No model of that id is declared in the configuration.</summary>
    NotDeclared,

    /// <summary>The model is in the wrong state for the action, or its replicas fit on no device.</summary>
    Conflict,

    /// <summary>The model folder failed verification or could not be opened.</summary>
    Failed,
}

public sealed record ModelActionResult(ModelActionOutcome Outcome, string Message);

/// <summary>Loads, unloads and reloads declared models on the node's devices, and says what runs where.</summary>
public interface IModelAdministration
{
    IReadOnlyList<ReplicaState> Replicas { get; }

    /// <summary>Replica-seconds per model since this process started (each replica counts the time it was loaded).</summary>
    IReadOnlyDictionary<string, double> ReplicaSeconds();

    Task<ModelActionResult> LoadAsync(string id, CancellationToken cancellationToken);

    Task<ModelActionResult> UnloadAsync(string id, CancellationToken cancellationToken);

    Task<ModelActionResult> ReloadAsync(string id, CancellationToken cancellationToken);
}
