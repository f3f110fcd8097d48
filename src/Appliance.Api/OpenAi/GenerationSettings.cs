using System.Text.Json;
using Appliance.Api.Models;
using Appliance.Engine.Requests;

namespace Appliance.Api.OpenAi;

/// <summary>The generation parameters chat and legacy completions share, as the client sent them.</summary>
internal sealed record GenerationSettings(
    string Model,
    bool Stream,
    bool IncludeUsage,
    int? MaxTokens,
    float? Temperature,
    float? TopP,
    int N,
    IReadOnlyList<string> Stop,
    long? Seed,
    float PresencePenalty,
    float FrequencyPenalty,
    int? TopK,
    float? MinP,
    float? RepetitionPenalty,
    bool Logprobs,
    int TopLogprobs,
    string? User,
    bool IgnoreEos = false,
    RequestPriority Priority = RequestPriority.Interactive,
    Appliance.Engine.Sampling.ITokenConstraint? Constraint = null,
    ToolUse? Tools = null,
    bool MaxTokensIsCeiling = false)
{
    /// <summary>Makes each choice's guardrail screen (the model's output rules), or null.</summary>
    public Func<Appliance.Engine.Output.IOutputScreen>? OutputScreen { get; init; }

    /// <summary>Extensions beyond OpenAI's parameters that vLLM-style clients send.</summary>
    public static readonly string[] ExtensionFields = ["top_k", "min_p", "repetition_penalty", "ignore_eos"];

    public static readonly string[] CommonFields =
        ["model", "stream", "stream_options", "max_tokens", "temperature", "top_p", "n", "stop", "seed", "presence_penalty", "frequency_penalty", "user", "service_tier", .. ExtensionFields];

    public static GenerationSettings Read(JsonFields fields, ApiLimits limits, long? askedMaxTokens, int? maxTokens, bool logprobs, int topLogprobs)
    {
        var stream = fields.OptionalBool("stream") ?? false;
        var topP = (float?)fields.OptionalNumber("top_p", 0, 1);
        if (topP == 0f)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'top_p' must be greater than 0.", "top_p"));
        }

        return new GenerationSettings(
            fields.RequiredString("model"),
            stream,
            fields.IncludeUsage(stream),
            maxTokens,
            (float?)fields.OptionalNumber("temperature", 0, 2),
            topP,
            (int)(fields.OptionalInteger("n", 1, limits.MaxN) ?? 1),
            fields.Stop(4),
            fields.OptionalInteger("seed", long.MinValue, long.MaxValue),
            (float)(fields.OptionalNumber("presence_penalty", -2, 2) ?? 0),
            (float)(fields.OptionalNumber("frequency_penalty", -2, 2) ?? 0),
            (int?)fields.OptionalInteger("top_k", 0, 100_000),
            (float?)fields.OptionalNumber("min_p", 0, 1),
            (float?)fields.OptionalNumber("repetition_penalty", 0.01, 10),
            logprobs,
            topLogprobs,
            fields.OptionalString("user"),
            fields.OptionalBool("ignore_eos") ?? false,
            PriorityOf(fields.OptionalString("service_tier")),
            MaxTokensIsCeiling: limits.Caps(askedMaxTokens));
    }

    /// <summary>
    /// OpenAI's service_tier: "flex" (slower, for work that can wait) runs in the batch class, behind interactive
    /// requests but never starved; "auto", "default" and "priority" are interactive.
    /// </summary>
    private static RequestPriority PriorityOf(string? serviceTier) => serviceTier switch
    {
        null or "auto" or "default" or "priority" => RequestPriority.Interactive,
        "flex" => RequestPriority.Batch,
        _ => throw new OpenAiRequestException(OpenAiError.Invalid($"'service_tier' must be one of auto, default, flex, priority; got '{serviceTier}'.", "service_tier")),
    };

    /// <summary>The engine's sampling parameters for choice <paramref name="choice"/> (a seed is offset per choice).</summary>
    public SamplingParams ToSampling(ModelDefaults defaults, int maxTokens, int choice) => new()
    {
        Temperature = Temperature ?? defaults.Temperature,
        TopP = TopP ?? defaults.TopP,
        TopK = TopK ?? defaults.TopK,
        MinP = MinP ?? 0,
        Seed = Seed is { } seed ? unchecked(seed + choice) : null,
        PresencePenalty = PresencePenalty,
        FrequencyPenalty = FrequencyPenalty,
        RepetitionPenalty = RepetitionPenalty ?? defaults.RepetitionPenalty,
        MaxTokens = maxTokens,
        StopStrings = Stop,
        Logprobs = Logprobs,
        TopLogprobs = TopLogprobs,
        IgnoreEos = IgnoreEos, // vLLM's extension: generate exactly max_tokens, for benchmarks and load tests
        Constraint = Constraint,
        OutputScreen = OutputScreen,
    };
}
