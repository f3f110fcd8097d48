namespace Appliance.Engine;

/// <summary>
/// The engine's loop failed outside a model run (sampling, detokenising, its own bookkeeping): the requests it held
/// end with this, and new ones are refused with it until the engine has restarted.
/// </summary>
public sealed class EngineFailedException(string message, int retryAfterSeconds, Exception? inner = null) : Exception(message, inner)
{
    public int RetryAfterSeconds { get; } = retryAfterSeconds;
}
