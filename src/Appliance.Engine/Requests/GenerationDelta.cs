namespace Appliance.Engine.Requests;

/// <summary>Token counts of a finished request, and how long it waited in the queue before its prefill began.</summary>
public readonly record struct GenerationUsage(int PromptTokens, int CompletionTokens, double QueueMilliseconds = 0)
{
    public int TotalTokens => PromptTokens + CompletionTokens;

    /// <summary>Prompt tokens whose KV came from the prefix cache instead of being computed (OpenAI's cached_tokens).</summary>
    public int CachedPromptTokens { get; init; }

    /// <summary>Completion tokens a reasoning model spent thinking (OpenAI's reasoning_tokens); counted by the API, which reads the thought.</summary>
    public int ReasoningTokens { get; init; }
}

/// <summary>
/// What one engine step added to a request: new text (never ending inside a character, never holding a stop string),
/// the tokens behind it, and on the last delta the finish reason and usage.
/// </summary>
public sealed record GenerationDelta(
    string Text,
    IReadOnlyList<int> TokenIds,
    IReadOnlyList<TokenLogprob>? Logprobs,
    FinishReason? FinishReason,
    GenerationUsage? Usage)
{
    /// <summary>On the last delta of a request a stop string ended: that string (Anthropic's stop_sequence).</summary>
    public string? StopString { get; init; }

    /// <summary>
    /// On the first delta of a request that asked for them (<see cref="GenerationRequest.PromptLogprobs"/>): the log
    /// probability of each prompt token after the first, in order, under the raw model (no temperature or penalty).
    /// </summary>
    public IReadOnlyList<TokenLogprob>? PromptLogprobs { get; init; }
}
