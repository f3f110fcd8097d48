using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>Where a session really runs: the CUDA device it was given, or the CPU (also when CUDA failed to load).</summary>
internal sealed record SessionDevice(int? CudaDeviceId, int IntraOpThreads, IReadOnlyDictionary<string, string> CudaSettings)
{
    public bool IsCuda => CudaDeviceId is not null;

    public static SessionDevice Cpu(int threads) => new(null, threads, new Dictionary<string, string>());
}

/// <summary>Creates inference sessions: CUDA on the configured device when it loads, otherwise the CPU, said once in the log.</summary>
internal static partial class SessionFactory
{
    public static (InferenceSession Session, SessionDevice Device) Create(string modelPath, RunnerOptions options, SessionSettings settings, ILogger logger)
    {
        _ = OnnxRuntimeEnvironment.Instance;
        using var sessionOptions = settings.Apply(new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = options.IntraOpThreads,
            InterOpNumThreads = 1,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        }, options.SessionConfig);

        var device = SessionDevice.Cpu(options.IntraOpThreads);
        if (options.CudaDeviceId is { } id)
        {
            var pool = CudaProviderSettings.From(options);
            try
            {
                // Creating or appending the provider throws when the CUDA libraries cannot load; GetAvailableProviders() is no signal.
                // One call with every option: each call to ONNX Runtime's UpdateCUDAProviderOptions starts again from
                // the defaults, so options given in separate calls keep only the last call's (a replica on GPU 1
                // with the model's own options ran on GPU 0, without its memory cap).
                var merged = settings.CudaProviderOptions(pool);
                using var cuda = new OrtCUDAProviderOptions();
                UpdateCudaOptions(cuda, pool, merged, settings, modelPath);
                sessionOptions.AppendExecutionProvider_CUDA(cuda);
                device = new SessionDevice(id, options.IntraOpThreads, merged);
                LogCuda(logger, modelPath, id, cuda.GetOptions()); // as the provider holds them, not as we meant them
            }
            catch (OnnxRuntimeException exception) when (options.RequireCuda)
            {
                throw new InvalidOperationException(
                    $"CUDA device {id} cannot run {modelPath}: {exception.Message}. ONNX Runtime 1.31's CUDA provider needs CUDA 13 " +
                    "(NVIDIA driver 580 or newer) and cuDNN 9 on the loader's path.", exception);
            }
            catch (OnnxRuntimeException exception)
            {
                LogCudaFallback(logger, modelPath, id, exception.Message);
            }
        }

        return (new InferenceSession(modelPath, sessionOptions), device);
    }

    /// <summary>
    /// Sets every option at once. When the provider refuses them although it takes the pool's own, each of the folder's
    /// options is tried beside the pool's on a scratch object, so that a value it refuses is named as the model's (a
    /// provider that cannot load at all refuses the pool's too, and is not blamed on the model); options refused only
    /// together are named together.
    /// </summary>
    private static void UpdateCudaOptions(
        OrtCUDAProviderOptions cuda, IReadOnlyDictionary<string, string> pool, Dictionary<string, string> merged, SessionSettings settings, string modelPath)
    {
        try
        {
            cuda.UpdateOptions(merged);
        }
        catch (OnnxRuntimeException) when (settings.CudaOptions.Count > 0 && Refusal(pool) is null)
        {
            foreach (var (key, value) in settings.CudaOptions)
            {
                if (Refusal(new Dictionary<string, string>(pool) { [key] = value }) is { } refusal)
                {
                    throw new Models.ModelFolderException(
                        $"{Path.GetDirectoryName(modelPath)}: genai_config.json's CUDA option {key}='{value}' is refused by the provider: {refusal.Message}", refusal);
                }
            }

            throw new Models.ModelFolderException(
                $"{Path.GetDirectoryName(modelPath)}: genai_config.json's CUDA options ({string.Join(", ", settings.CudaOptions.Select(o => $"{o.Key}='{o.Value}'"))}) "
                + "are refused together, though each is taken alone: remove them one by one to find the pair");
        }
    }

    /// <summary>Why the provider refuses these options (tried on a scratch object), or null when it takes them.</summary>
    private static OnnxRuntimeException? Refusal(IReadOnlyDictionary<string, string> options)
    {
        try
        {
            using var scratch = new OrtCUDAProviderOptions();
            scratch.UpdateOptions(options.ToDictionary());
            return null;
        }
        catch (OnnxRuntimeException exception)
        {
            return exception;
        }
    }

    /// <summary>A small helper graph (for example the logits selector) on the same device as a model's session.</summary>
    public static InferenceSession CreateHelper(byte[] model, SessionDevice device)
    {
        _ = OnnxRuntimeEnvironment.Instance;
        using var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = 1,
            InterOpNumThreads = 1,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        if (device.IsCuda)
        {
            using var cuda = new OrtCUDAProviderOptions();
            var helper = device.CudaSettings.Where(s => s.Key is "device_id" or "do_copy_in_default_stream").ToDictionary();
            helper["gpu_mem_limit"] = MemoryPlan.HelperSessionBytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
            cuda.UpdateOptions(helper);
            sessionOptions.AppendExecutionProvider_CUDA(cuda);
        }

        return new InferenceSession(model, sessionOptions);
    }

    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "Model {ModelPath} runs on CUDA device {DeviceId} ({ProviderOptions})")]
    private static partial void LogCuda(ILogger logger, string modelPath, int deviceId, string providerOptions);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Warning, Message = "CUDA device {DeviceId} is not usable for {ModelPath}; running on the CPU instead ({Reason})")]
    private static partial void LogCudaFallback(ILogger logger, string modelPath, int deviceId, string reason);
}
