namespace Appliance.Engine;

/// <summary>
/// The engine's waiting queue is full; the caller should retry after <see cref="RetryAfterSeconds"/> (HTTP 429), an
/// estimate from the queue's depth and the rate at which the engine has been finishing requests.
/// </summary>
public sealed class EngineOverloadedException(string message, int queuedRequests, int retryAfterSeconds = 1) : Exception(message)
{
    public int QueuedRequests { get; } = queuedRequests;

    public int RetryAfterSeconds { get; } = retryAfterSeconds;
}
