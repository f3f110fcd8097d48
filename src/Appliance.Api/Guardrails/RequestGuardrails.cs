using Appliance.Api.OpenAi;
using Appliance.Engine.Output;
using Appliance.Prompting;

namespace Appliance.Api.Guardrails;

/// <summary>
/// The rules that apply to one request's model, bound to that request's audit tally: screens what the caller sent
/// (masking, or refusing with 400 content_filter) and makes the screen each of its answers streams through.
/// </summary>
internal sealed class RequestGuardrails(string modelId, IReadOnlyList<GuardrailRule> input, IReadOnlyList<GuardrailRule> output, GuardrailTally tally, IGuardrailObserver? observer)
{
    public bool ScreensInput => input.Count > 0;

    public bool ScreensOutput => output.Count > 0;

    /// <summary>Makes each choice's output screen; null when no rule reads this model's answers.</summary>
    public Func<IOutputScreen>? OutputScreen => output.Count == 0 ? null : () => new OutputScreen(output, this);

    /// <summary>The conversation with every match masked (contents, thoughts and tool-call arguments), or a 400.</summary>
    public IReadOnlyList<ChatMessage> Screen(IReadOnlyList<ChatMessage> messages, string param)
    {
        if (input.Count == 0)
        {
            return messages;
        }

        return [.. messages.Select((message, i) => message with
        {
            Content = Screen(message.Content, $"{param}[{i}]"),
            Reasoning = message.Reasoning is null ? null : Screen(message.Reasoning, $"{param}[{i}]"),
            ToolCalls = message.ToolCalls?.Select(call => call with { Arguments = Screen(call.Arguments, $"{param}[{i}]") }).ToList(),
        })];
    }

    /// <summary>The text with every match masked, or a 400 content_filter naming the rule that blocks it (never the match).</summary>
    /// <param name="record">False for a copy of text screened (and counted) already, such as what a response echoes.</param>
    public string Screen(string text, string param, bool record = true)
    {
        if (input.Count == 0 || text.Length == 0)
        {
            return text;
        }

        var matches = MatchResolution.Resolve(input, text);
        if (matches.Count == 0)
        {
            return text;
        }

        if (matches.FirstOrDefault(m => m.Rule.Action == GuardrailAction.Block) is { Rule: not null } blocked)
        {
            if (record)
            {
                Record("input", blocked.Rule);
            }

            throw new OpenAiRequestException(OpenAiError.Invalid(
                $"The input was refused by the guardrail '{blocked.Rule.Name}' of model '{modelId}'.", param, "content_filter"));
        }

        var masked = new System.Text.StringBuilder(text.Length);
        var position = 0;
        foreach (var match in matches)
        {
            if (record)
            {
                Record("input", match.Rule);
            }

            masked.Append(text, position, match.Start - position).Append(match.Rule.Mask);
            position = match.End;
        }

        return masked.Append(text, position, text.Length - position).ToString();
    }

    /// <summary>
    /// Log probabilities name the tokens themselves: through them a masked or withheld answer would still be read, so
    /// a model whose answers are screened refuses them.
    /// </summary>
    public void RefuseLogprobs(bool logprobs, string param)
    {
        if (logprobs && ScreensOutput)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid(
                $"'{param}' is not available for model '{modelId}': its answers pass guardrails that may mask or withhold text, which token log probabilities would show.", param, "unsupported_parameter"));
        }
    }

    internal void Record(string direction, GuardrailRule rule)
    {
        tally.Add(direction, rule.Action, rule.Name);
        observer?.Intervened(rule.Name, direction, rule.Action);
    }
}
