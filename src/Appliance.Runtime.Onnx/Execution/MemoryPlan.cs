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

    /// <summary>
    /// The plan for a model folder served with <paramref name="maxBatchSize"/> rows of <paramref name="contextLength"/>
    /// tokens (null: the model's own context) on CUDA or the CPU.
    /// </summary>
    public static MemoryPlan For(ModelFolder folder, DecoderSignature signature, int maxBatchSize, int? contextLength, bool cuda, long? logitsBudgetBytes = null)
    {
        var config = folder.Config;
        var context = Math.Min(config.ContextLength, contextLength ?? config.ContextLength);
        var weights = folder.Manifest.Files.Sum(f => f.Size);
        var kv = KvCacheBytesFor(config, signature, maxBatchSize, context);
        var budget = new RunnerOptions { LogitsBudgetBytes = logitsBudgetBytes }.LogitsBudgetFor(cuda);
        // A run's logits: at least one row per sequence, at most the budget (or every position of every sequence).
        var row = (long)config.VocabularySize * signature.LogitsElementSize;
        var logits = Math.Max(Math.Min(budget, (long)maxBatchSize * context * row), maxBatchSize * row);
        var hostRows = (long)maxBatchSize * config.VocabularySize * sizeof(float);
        var runtime = Math.Max(weights / 4, 64L << 20);
        return new MemoryPlan(weights, kv, logits, runtime, cuda ? hostRows : hostRows + weights + kv + logits + runtime, context);
    }

    /// <summary>
    /// The KV cache the runner preallocates: a key and a value buffer per layer of [batch, kv_heads, context,
    /// head_size]; the concatenating layout keeps two such sets (this step's past and present).
    /// </summary>
    public static long KvCacheBytesFor(GenAiConfig config, DecoderSignature signature, int maxBatchSize, int contextLength)
    {
        var decoder = config.Decoder;
        var oneSet = 2L * decoder.Layers * maxBatchSize * decoder.KvHeads * contextLength * decoder.HeadSize * signature.KvElementSize;
        return config.Search.PastPresentShareBuffer ? oneSet : 2 * oneSet;
    }

    /// <summary>Share of a device's memory one replica may plan for when the context is chosen automatically.</summary>
    public const double DeviceShare = 0.9;

    /// <summary>
    /// The plan for the node's devices. A context set by the operator is kept as it is (placement says if it does not
    /// fit). Otherwise the model's own context is used when a replica fits in <see cref="DeviceShare"/> of the largest
    /// healthy device; when it does not (Llama 3.1's 131,072 tokens for 8 sequences need 137 GB of float16 cache), the
    /// context is capped to the longest that fits, and <paramref name="note"/> says so.
    /// </summary>
    public static MemoryPlan ForDevices(ModelFolder folder, DecoderSignature signature, int maxBatchSize, int? contextLength, long? logitsBudgetBytes, IReadOnlyList<PoolDevice> devices, out string? note)
    {
        note = null;
        var largest = devices.Where(d => d.Healthy).MaxBy(d => d.MemoryTotalBytes);
        var cuda = largest?.Kind == DeviceKind.Cuda;
        var full = For(folder, signature, maxBatchSize, contextLength, cuda, logitsBudgetBytes);
        if (contextLength is not null || largest is null)
        {
            return full;
        }

        var share = (long)(largest.MemoryTotalBytes * DeviceShare);
        if (full.DeviceBytes <= share || LargestContextFitting(folder, signature, maxBatchSize, cuda, share, logitsBudgetBytes) is not { } fitting)
        {
            return full;
        }

        var capped = For(folder, signature, maxBatchSize, fitting, cuda, logitsBudgetBytes);
        note = $"context capped from {full.ContextLength} to {fitting} tokens: the KV cache of {maxBatchSize} sequences at the model's own context " +
            $"({Gib(full.KvCacheBytes)}) does not fit in {DeviceShare:P0} of {largest.Id} ({Gib(largest.MemoryTotalBytes)}); set ContextLength or MaxBatchSize to choose";
        return capped;
    }

    private static string Gib(long bytes) => $"{bytes / (double)(1L << 30):0.#} GiB";

    /// <summary>
    /// The longest context (a multiple of 256, at most the model's) whose plan fits in <paramref name="deviceBytes"/>;
    /// null when not even 256 tokens fit.
    /// </summary>
    public static int? LargestContextFitting(ModelFolder folder, DecoderSignature signature, int maxBatchSize, bool cuda, long deviceBytes, long? logitsBudgetBytes = null)
    {
        var full = For(folder, signature, maxBatchSize, null, cuda, logitsBudgetBytes);
        if (full.DeviceBytes <= deviceBytes)
        {
            return full.ContextLength;
        }

        var perToken = KvCacheBytesFor(folder.Config, signature, maxBatchSize, 1);
        var rest = full.DeviceBytes - full.KvCacheBytes;
        var tokens = (deviceBytes - rest) / perToken / 256 * 256;
        return tokens >= 256 ? (int)Math.Min(tokens, full.ContextLength) : null;
    }
}
