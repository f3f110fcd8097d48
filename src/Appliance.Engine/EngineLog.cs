using Microsoft.Extensions.Logging;

namespace Appliance.Engine;

/// <summary>The engine's log messages; event ids 1000-1099 belong to the engine.</summary>
internal static partial class EngineLog
{
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "Engine for model {ModelId} started: batch {MaxBatchSize}, KV cache {KvTokens} tokens, prefill budget {PrefillBudget} tokens")]
    public static partial void Started(ILogger logger, string modelId, int maxBatchSize, int kvTokens, int prefillBudget);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Error, Message = "Model run failed for {Count} sequences of model {ModelId}; their requests fail")]
    public static partial void RunFailed(ILogger logger, Exception exception, int count, string modelId);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "Engine for model {ModelId} stopped; {Cancelled} unfinished requests were cancelled")]
    public static partial void Stopped(ILogger logger, string modelId, int cancelled);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Critical, Message = "Engine loop for model {ModelId} crashed ({Failed} requests failed); restarting in {BackoffMs} ms")]
    public static partial void LoopCrashed(ILogger logger, Exception exception, string modelId, int failed, double backoffMs);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Engine loop for model {ModelId} restarted after {Restarts} crashes")]
    public static partial void LoopRestarted(ILogger logger, string modelId, long restarts);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "Prefix cache of model {ModelId}: a block copy failed; the cache was emptied and requests compute their prompts")]
    public static partial void PrefixCopyFailed(ILogger logger, Exception exception, string modelId);

    [LoggerMessage(EventId = 1007, Level = LogLevel.Warning, Message = "Speculative decoding for model {ModelId} failed and is switched off for this engine; requests decode plainly")]
    public static partial void SpeculationFailed(ILogger logger, Exception exception, string modelId);

    [LoggerMessage(EventId = 1008, Level = LogLevel.Error, Message = "Request {SequenceId} on model {ModelId} failed while its output was read; it alone ends, the engine goes on")]
    public static partial void RequestFailed(ILogger logger, Exception exception, long sequenceId, string modelId);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Error, Message = "A model run of model {ModelId} has taken {Seconds:F0} s, longer than the run timeout; it is interrupted and its requests fail")]
    public static partial void RunOverdue(ILogger logger, string modelId, double seconds);

    [LoggerMessage(EventId = 1010, Level = LogLevel.Critical, Message = "The engine of model {ModelId} did not stop within {Seconds:F0} s: its model run ignores the interrupt. Its runner (and device memory) stays held until the process restarts")]
    public static partial void StopTimedOut(ILogger logger, string modelId, double seconds);
}
