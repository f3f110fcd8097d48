using Appliance.Prompting.Reasoning;

namespace Appliance.Api.OpenAi;

/// <summary>
/// What a request asks of a reasoning model: thinking on or off (null: the model's default), an effort passed to
/// templates that read one, and a budget of thought tokens (Anthropic's <c>budget_tokens</c>) after which the thought
/// is closed for the model.
/// </summary>
internal sealed record ReasoningRequest(bool? Thinking, string? Effort, int? Budget)
{
    public static readonly ReasoningRequest Default = new(null, null, null);

    /// <summary>OpenAI's reasoning efforts; none and minimal turn thinking off, the others on.</summary>
    public static readonly string[] Efforts = ["none", "minimal", "low", "medium", "high", "xhigh"];

    /// <summary>Whether the thought is left out of the answer (Anthropic's display: omitted); it is still generated and counted.</summary>
    public bool Omitted { get; init; }

    /// <summary>The switch handed to the chat template, or null to leave its defaults.</summary>
    public ReasoningSwitch? Switch => Thinking is null && Effort is null ? null : new ReasoningSwitch(Thinking, Effort);

    /// <summary>An effort as OpenAI's <c>reasoning_effort</c> or <c>reasoning.effort</c> gives it.</summary>
    public static ReasoningRequest FromEffort(string? effort, string param) => effort switch
    {
        null => Default,
        "none" or "minimal" => new ReasoningRequest(false, effort, null),
        _ when Efforts.Contains(effort) => new ReasoningRequest(true, effort, null),
        _ => throw new OpenAiRequestException(OpenAiError.Invalid($"Invalid value for '{param}': '{effort}'. Supported values are: {string.Join(", ", Efforts.Select(e => $"'{e}'"))}.", param)),
    };
}
