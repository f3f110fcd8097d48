using Microsoft.ML.OnnxRuntime;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>The process-wide ONNX Runtime environment, created once with telemetry off (nothing phones home).</summary>
public static class OnnxRuntimeEnvironment
{
    private static readonly Lazy<OrtEnv> Environment = new(() =>
    {
        var options = new EnvironmentCreationOptions { logId = "appliance", logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        OrtEnv env;
        try
        {
            env = OrtEnv.CreateInstanceWithOptions(ref options);
        }
        catch (OnnxRuntimeException)
        {
            // Something in the process (any SessionOptions) already created the default environment: use it.
            env = OrtEnv.Instance();
        }

        env.DisableTelemetryEvents();
        return env;
    });

    public static OrtEnv Instance => Environment.Value;
}
