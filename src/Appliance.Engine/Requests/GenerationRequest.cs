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

    /// <summary>
    /// Score the prompt: the log probability of each prompt token after the first (with <see cref="SamplingParams.TopLogprobs"/>
    /// alternatives), on the first delta (<see cref="GenerationDelta.PromptLogprobs"/>). What evaluation harnesses read
    /// from a legacy completion with echo. Such a prompt is computed whole, never taken from the prefix cache.
    /// </summary>
    public bool PromptLogprobs { get; init; }
}
