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
            try
            {
                // Creating or appending the provider throws when the CUDA libraries cannot load; GetAvailableProviders() is no signal.
                var cudaSettings = settings.CudaProviderOptions(CudaProviderSettings.From(options));
                using var cuda = new OrtCUDAProviderOptions();
                cuda.UpdateOptions(cudaSettings);
                sessionOptions.AppendExecutionProvider_CUDA(cuda);
                device = new SessionDevice(id, options.IntraOpThreads, cudaSettings);
                LogCuda(logger, modelPath, id);
            }
            catch (OnnxRuntimeException exception)
            {
                LogCudaFallback(logger, modelPath, id, exception.Message);
            }
        }

        return (new InferenceSession(modelPath, sessionOptions), device);
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
            cuda.UpdateOptions(device.CudaSettings.Where(s => s.Key is "device_id" or "do_copy_in_default_stream").ToDictionary());
            sessionOptions.AppendExecutionProvider_CUDA(cuda);
        }

        return new InferenceSession(model, sessionOptions);
    }

    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "Model {ModelPath} runs on CUDA device {DeviceId}")]
    private static partial void LogCuda(ILogger logger, string modelPath, int deviceId);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Warning, Message = "CUDA device {DeviceId} is not usable for {ModelPath}; running on the CPU instead ({Reason})")]
    private static partial void LogCudaFallback(ILogger logger, string modelPath, int deviceId, string reason);
}
