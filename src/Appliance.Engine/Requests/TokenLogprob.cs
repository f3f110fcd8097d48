namespace Appliance.Engine.Requests;

/// <summary>A candidate token and its log probability under the model.</summary>
public readonly record struct TokenCandidate(int TokenId, float Logprob);

/// <summary>The log probability of a chosen token, with the most likely alternatives when asked.</summary>
public sealed record TokenLogprob(int TokenId, float Logprob, IReadOnlyList<TokenCandidate> TopAlternatives);
