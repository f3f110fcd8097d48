using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>Creates inference sessions: CUDA on the configured device when it loads, otherwise the CPU, said once in the log.</summary>
internal static partial class SessionFactory
{
    public static InferenceSession Create(string modelPath, RunnerOptions options, ILogger logger)
    {
        _ = OnnxRuntimeEnvironment.Instance;
        using var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = options.IntraOpThreads,
            InterOpNumThreads = 1,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };

        foreach (var (key, value) in options.SessionConfig)
        {
            sessionOptions.AddSessionConfigEntry(key, value);
        }

        if (options.CudaDeviceId is { } device)
        {
            try
            {
                // Creating or appending the provider throws when the CUDA libraries cannot load; GetAvailableProviders() is no signal.
                using var cuda = new OrtCUDAProviderOptions();
                cuda.UpdateOptions(CudaProviderSettings.From(options));
                sessionOptions.AppendExecutionProvider_CUDA(cuda);
                LogCuda(logger, modelPath, device);
            }
            catch (OnnxRuntimeException exception)
            {
                LogCudaFallback(logger, modelPath, device, exception.Message);
            }
        }

        return new InferenceSession(modelPath, sessionOptions);
    }

    [LoggerMessage(EventId = 1100, Level = LogLevel.Information, Message = "Model {ModelPath} runs on CUDA device {DeviceId}")]
    private static partial void LogCuda(ILogger logger, string modelPath, int deviceId);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Warning, Message = "CUDA device {DeviceId} is not usable for {ModelPath}; running on the CPU instead ({Reason})")]
    private static partial void LogCudaFallback(ILogger logger, string modelPath, int deviceId, string reason);
}
