using Appliance.Engine.Pool;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// What one replica of a model needs, before it is placed: on its device the weights (the folder's files), the KV
/// cache exactly as the runner allocates it (the model's element type, layout, context and batch), the largest logits
/// tensor one run may produce, and a margin for activations and the runtime; on the host the float32 logits rows the
/// sampler reads. On the CPU provider the device is the host, so everything counts there.
/// </summary>
public sealed record MemoryPlan(long WeightsBytes, long KvCacheBytes, long LogitsBytes, long RuntimeBytes, long HostBytes, int ContextLength)
{
    /// <summary>Bytes on the device the replica runs on.</summary>
    public long DeviceBytes => WeightsBytes + KvCacheBytes + LogitsBytes + RuntimeBytes;

    /// <summary>The share of a device's memory the logits selector's own session may take on CUDA.</summary>
    public const long HelperSessionBytes = 256L << 20;

    /// <summary>
    /// The plan for a model folder served with <paramref name="maxBatchSize"/> rows of <paramref name="contextLength"/>
    /// tokens (null: the model's own context) on CUDA or the CPU.
    /// </summary>
    public static MemoryPlan For(ModelFolder folder, DecoderSignature signature, int maxBatchSize, int? contextLength, bool cuda, long? logitsBudgetBytes = null, int? prefixCacheTokens = null)
    {
        var config = folder.Config;
        var context = Math.Min(config.ContextLength, contextLength ?? config.ContextLength);
        var weights = folder.Manifest.Files.Sum(f => f.Size);
        var kv = KvCacheBytesFor(config, signature, maxBatchSize, context, prefixCacheTokens);
        var options = new RunnerOptions { LogitsBudgetBytes = logitsBudgetBytes };
        var budget = options.LogitsBudgetFor(cuda);
        // A run's logits: at least one row per sequence, at most the budget (or every position of every sequence).
        var row = (long)config.VocabularySize * signature.LogitsElementSize;
        var logits = Math.Max(Math.Min(budget, (long)maxBatchSize * context * row), maxBatchSize * row);
        var positionsPerRun = options.PositionsPerRun(cuda, config.VocabularySize, signature.LogitsElementSize);
        var hostRows = (long)RunnerOptions.HostLogitsRows(maxBatchSize, config.VocabularySize, positionsPerRun, signature.LogitsEveryPosition) * config.VocabularySize * sizeof(float);
        // Activations and the runtime's own buffers; a concatenating cache also holds a prefill's past and present
        // outside its arenas until the sequences first decode; CUDA adds the logits selector's session.
        var runtime = Math.Max(weights / 4, 64L << 20) + (config.Search.PastPresentShareBuffer ? 0 : kv / 2) + (cuda ? HelperSessionBytes : 0);
        return new MemoryPlan(weights, kv, logits, runtime, cuda ? hostRows : hostRows + weights + kv + logits + runtime, context);
    }

    /// <summary>
    /// The KV cache the runner preallocates: a key and a value buffer per layer of [batch, kv_heads, context,
    /// head_size]; the shared-buffer layout adds one row of one buffer as scratch for swapping rows, the concatenating
    /// layout keeps two sets (this step's past and present). The prefix cache's block pool comes on top (by default
    /// one context's worth of every layer's keys and values).
    /// </summary>
    public static long KvCacheBytesFor(GenAiConfig config, DecoderSignature signature, int maxBatchSize, int contextLength, int? prefixCacheTokens = null)
    {
        var decoder = config.Decoder;
        var perToken = (long)decoder.KvHeads * decoder.HeadSize * signature.KvElementSize;
        var row = perToken * contextLength;
        var oneSet = 2L * decoder.Layers * maxBatchSize * row;
        var blocks = new RunnerOptions { PrefixCacheTokens = prefixCacheTokens }.PrefixCacheBlocks(contextLength);
        var prefixPool = 2L * decoder.Layers * blocks * RunnerOptions.DefaultPrefixBlockTokens * perToken;
        return (config.Search.PastPresentShareBuffer ? oneSet + row : 2 * oneSet) + prefixPool;
    }

    /// <summary>Share of a device's memory one replica may plan for when the context is chosen automatically.</summary>
    public const double DeviceShare = 0.9;

    /// <summary>
    /// The plan for the node's devices, each with the bytes still available on it (free memory less what other models
    /// placed there hold). GPUs are planned for when the node has any. A context set by the operator is kept as it is
    /// (placement says if it does not fit). Otherwise the model's own context is used when each of the
    /// <paramref name="replicas"/> fits in <see cref="DeviceShare"/> of a device's available memory; when not even the
    /// roomiest devices can hold that (Llama 3.1's 131,072 tokens for 8 sequences need 137 GB of float16 cache), the
    /// context is capped to the longest that fits, and <paramref name="note"/> says so.
    /// </summary>
    public static MemoryPlan ForDevices(
        ModelFolder folder, DecoderSignature signature, int maxBatchSize, int? contextLength, long? logitsBudgetBytes, int replicas,
        IReadOnlyList<(PoolDevice Device, long AvailableBytes)> devices, out string? note, int? prefixCacheTokens = null)
    {
        note = null;
        var healthy = devices.Where(d => d.Device.Healthy).ToList();
        var candidates = healthy.Any(d => d.Device.Kind == DeviceKind.Cuda) ? healthy.Where(d => d.Device.Kind == DeviceKind.Cuda).ToList() : healthy;
        // Replicas go to different devices: the plan must fit the replicas-th roomiest one.
        var target = candidates.OrderByDescending(d => d.AvailableBytes).Skip(Math.Max(replicas, 1) - 1).FirstOrDefault();
        var cuda = candidates.Count > 0 && candidates[0].Device.Kind == DeviceKind.Cuda;
        var full = For(folder, signature, maxBatchSize, contextLength, cuda, logitsBudgetBytes, prefixCacheTokens);
        if (contextLength is not null || target.Device is null)
        {
            return full;
        }

        var share = (long)(target.AvailableBytes * DeviceShare);
        if (full.DeviceBytes <= share || LargestContextFitting(folder, signature, maxBatchSize, cuda, share, logitsBudgetBytes, prefixCacheTokens) is not { } fitting)
        {
            return full;
        }

        var capped = For(folder, signature, maxBatchSize, fitting, cuda, logitsBudgetBytes, prefixCacheTokens);
        note = $"context capped from {full.ContextLength} to {fitting} tokens: the KV cache of {maxBatchSize} sequences at the model's own context " +
            $"({Gib(full.KvCacheBytes)}) does not fit in {DeviceShare:P0} of the {Gib(target.AvailableBytes)} available on {target.Device.Id}; set ContextLength or MaxBatchSize to choose";
        return capped;
    }

    private static string Gib(long bytes) => $"{bytes / (double)(1L << 30):0.#} GiB";

    /// <summary>
    /// The longest context (a multiple of 256, at most the model's) whose plan fits in <paramref name="deviceBytes"/>;
    /// null when not even 256 tokens fit.
    /// </summary>
    public static int? LargestContextFitting(ModelFolder folder, DecoderSignature signature, int maxBatchSize, bool cuda, long deviceBytes, long? logitsBudgetBytes = null, int? prefixCacheTokens = null)
    {
        var full = For(folder, signature, maxBatchSize, null, cuda, logitsBudgetBytes, prefixCacheTokens);
        if (full.DeviceBytes <= deviceBytes)
        {
            return full.ContextLength;
        }

        // The plan grows with the context (KV cache, and for concatenating caches the prefill's transient copy): search.
        int low = 0, high = full.ContextLength / 256;
        while (low < high)
        {
            var middle = (low + high + 1) / 2;
            if (For(folder, signature, maxBatchSize, middle * 256, cuda, logitsBudgetBytes, prefixCacheTokens).DeviceBytes <= deviceBytes)
            {
                low = middle;
            }
            else
            {
                high = middle - 1;
            }
        }

        return low > 0 ? low * 256 : null;
    }
}
