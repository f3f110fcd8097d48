using System.Globalization;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// The CUDA execution provider's key/value options for a runner (names from ONNX Runtime's CUDA provider
/// documentation): the device the replica was placed on, its memory share and how the arena grows.
/// </summary>
public static class CudaProviderSettings
{
    public static Dictionary<string, string> From(RunnerOptions options)
    {
        var device = options.CudaDeviceId ?? throw new ArgumentException("the runner has no CUDA device", nameof(options));
        var settings = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["device_id"] = device.ToString(CultureInfo.InvariantCulture),
            ["arena_extend_strategy"] = options.CudaArenaExtendStrategy == "same_as_requested" ? "kSameAsRequested" : "kNextPowerOfTwo",
            // The engine copies inputs right before each run; one stream avoids races between copy and compute.
            ["do_copy_in_default_stream"] = "1",
        };
        if (options.CudaMemoryLimitBytes is { } limit)
        {
            settings["gpu_mem_limit"] = limit.ToString(CultureInfo.InvariantCulture);
        }

        return settings;
    }
}
