namespace Appliance.Engine.Requests;

/// <summary>A tokenised request for the engine. Tokenisation happens on the caller's thread, not the engine's.</summary>
public sealed record GenerationRequest(string RequestId, IReadOnlyList<int> PromptTokens, SamplingParams Sampling)
{
    /// <summary>Who the request is charged to for fair queueing (a team or group); empty is one shared tenant.</summary>
    public string Tenant { get; init; } = string.Empty;

    public RequestPriority Priority { get; init; } = RequestPriority.Interactive;

    /// <summary>
    /// The longest the caller is willing to wait for its first step. A request whose expected wait (queue depth over the
    /// engine's measured completion rate) is longer is refused at once instead of timing out in the queue.
    /// </summary>
    public TimeSpan? MaxQueueWait { get; init; }
}
