namespace Appliance.Engine;

/// <summary>The engine's waiting queue is full; the caller should retry later (HTTP 429).</summary>
public sealed class EngineOverloadedException(string message, int queuedRequests) : Exception(message)
{
    public int QueuedRequests { get; } = queuedRequests;
}
