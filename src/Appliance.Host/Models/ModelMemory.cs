using Appliance.Host.Options;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Host.Models;

/// <summary>How much device memory one replica of a model is expected to take, for placement.</summary>
internal static class ModelMemory
{
    /// <summary>
    /// The declared figure, else the folder's files (weights dominate) plus the preallocated float32 KV cache for the
    /// batch and context, with a quarter added for activations and the runtime's own buffers.
    /// </summary>
    public static long Estimate(ModelFolder folder, ModelOptions options)
    {
        if (options.MemoryBytes is { } declared)
        {
            return declared;
        }

        var files = folder.Manifest.Files.Sum(f => f.Size);
        var decoder = folder.Config.Decoder;
        var context = Math.Min(folder.Config.ContextLength, options.ContextLength ?? folder.Config.ContextLength);
        var kvCache = 2L * decoder.Layers * decoder.KvHeads * decoder.HeadSize * context * options.MaxBatchSize * sizeof(float);
        return (files + kvCache) * 5 / 4;
    }
}
