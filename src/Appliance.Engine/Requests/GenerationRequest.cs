namespace Appliance.Engine.Requests;

/// <summary>A tokenised request for the engine. Tokenisation happens on the caller's thread, not the engine's.</summary>
public sealed record GenerationRequest(string RequestId, IReadOnlyList<int> PromptTokens, SamplingParams Sampling);
