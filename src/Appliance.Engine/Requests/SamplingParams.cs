namespace Appliance.Engine.Requests;

/// <summary>How one request picks its tokens. Defaults follow OpenAI's API (temperature 1, top-p 1).</summary>
public sealed record SamplingParams
{
    /// <summary>0 means greedy.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>0 means no top-k limit.</summary>
    public int TopK { get; init; }

    public float TopP { get; init; } = 1f;

    public float MinP { get; init; }

    /// <summary>Fixes the random stream: the same seed and request give the same tokens in any batch.</summary>
    public long? Seed { get; init; }

    public float PresencePenalty { get; init; }

    public float FrequencyPenalty { get; init; }

    /// <summary>Multiplicative penalty over prompt and generated tokens (1 = off), as in Hugging Face.</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>Most tokens to generate; 0 only reads the prompt (a scoring request, see GenerationRequest.PromptLogprobs).</summary>
    public int MaxTokens { get; init; } = 256;

    public IReadOnlyList<string> StopStrings { get; init; } = [];

    public bool IgnoreEos { get; init; }

    /// <summary>Return the log probability of each chosen token.</summary>
    public bool Logprobs { get; init; }

    /// <summary>How many most likely alternatives to return with each chosen token (0-20).</summary>
    public int TopLogprobs { get; init; }

    /// <summary>A language the output must stay in (structured outputs), or null for free text.</summary>
    public Sampling.ITokenConstraint? Constraint { get; init; }

    /// <summary>Makes the screen each sequence's text passes before it is sent (guardrails), or null for none.</summary>
    public Func<Output.IOutputScreen>? OutputScreen { get; init; }

    public bool IsGreedy => Temperature == 0f || TopK == 1;

    /// <summary>Returns the first problem found, or null when the parameters are valid.</summary>
    public string? Validate()
    {
        if (!float.IsFinite(Temperature) || Temperature < 0f || Temperature > 2f)
        {
            return "temperature must be between 0 and 2";
        }

        if (TopK < 0)
        {
            return "top_k must not be negative";
        }

        if (!float.IsFinite(TopP) || TopP <= 0f || TopP > 1f)
        {
            return "top_p must be greater than 0 and at most 1";
        }

        if (!float.IsFinite(MinP) || MinP < 0f || MinP > 1f)
        {
            return "min_p must be between 0 and 1";
        }

        if (!float.IsFinite(PresencePenalty) || PresencePenalty < -2f || PresencePenalty > 2f)
        {
            return "presence_penalty must be between -2 and 2";
        }

        if (!float.IsFinite(FrequencyPenalty) || FrequencyPenalty < -2f || FrequencyPenalty > 2f)
        {
            return "frequency_penalty must be between -2 and 2";
        }

        if (!float.IsFinite(RepetitionPenalty) || RepetitionPenalty <= 0f)
        {
            return "repetition_penalty must be greater than 0";
        }

        if (MaxTokens < 0)
        {
            return "max_tokens must not be negative";
        }

        if (TopLogprobs is < 0 or > 20)
        {
            return "top_logprobs must be between 0 and 20";
        }

        if (StopStrings.Count > 16 || StopStrings.Any(string.IsNullOrEmpty))
        {
            return "stop must hold at most 16 non-empty strings";
        }

        return null;
    }
}
