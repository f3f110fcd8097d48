using System.Globalization;
using Appliance.Prompting.Jinja;

namespace Appliance.Prompting;

/// <summary>
/// A model's own chat template (tokenizer_config.json's chat_template, Jinja), rendered as Hugging Face transformers
/// renders it: messages, bos_token, eos_token, add_generation_prompt, raise_exception and strftime_now.
/// </summary>
public sealed class HuggingFaceChatTemplate : IChatTemplate
{
    private readonly JinjaTemplate _template;
    private readonly string _bosToken;
    private readonly string _eosToken;
    private readonly TimeProvider _time;
    private readonly bool _callsAsWritten;

    /// <summary>Parses the template; unknown syntax throws <see cref="ChatTemplateException"/> here, at model load.</summary>
    public HuggingFaceChatTemplate(string source, string? bosToken, string? eosToken, TimeProvider? time = null)
    {
        _template = JinjaTemplate.Parse(source);
        Source = source;
        _bosToken = bosToken ?? string.Empty;
        _eosToken = eosToken ?? string.Empty;
        _time = time ?? TimeProvider.System;
        _callsAsWritten = ToolCallFormat.FromTemplate(source) is var format && (format == ToolCallFormat.DeepSeekV3 || format == ToolCallFormat.DeepSeekV31);
    }

    public string Name => "model";

    /// <summary>The template's source, from which the tool-call format of the model is recognised.</summary>
    public string Source { get; }

    string? IChatTemplate.Source => Source;

    public string? BosToken => _bosToken.Length > 0 ? _bosToken : null;

    public string? EosToken => _eosToken.Length > 0 ? _eosToken : null;

    /// <summary>Renders; a template that refuses the conversation throws <see cref="ChatTemplateRejectedException"/>.</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, IReadOnlyList<ToolDefinition>? tools = null, Reasoning.ReasoningSwitch? reasoning = null)
    {
        var context = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = TemplateValues.Messages(messages, _callsAsWritten),
            ["bos_token"] = _bosToken,
            ["eos_token"] = _eosToken,
            ["add_generation_prompt"] = addGenerationPrompt,
            ["strftime_now"] = (JinjaCallable)((args, _) => StrftimeNow(args.Count > 0 ? JinjaValues.ToText(args[0]) : "%Y-%m-%d")),
        };
        if (tools is { Count: > 0 })
        {
            context["tools"] = TemplateValues.Tools(tools);
        }

        if (reasoning?.Thinking is { } thinking)
        {
            // Qwen3 reads enable_thinking; DeepSeek V3.1 and Granite read thinking. Neither is set unless asked, so a
            // template's own default (Qwen3 thinks, V3.1 does not) holds otherwise.
            context["enable_thinking"] = thinking;
            context["thinking"] = thinking;
        }

        if (reasoning?.Effort is { } effort)
        {
            context["reasoning_effort"] = effort;
        }

        return _template.Render(context);
    }

    /// <summary>The strftime directives chat templates use to print today's date.</summary>
    private string StrftimeNow(string format)
    {
        var now = _time.GetLocalNow();
        var culture = CultureInfo.InvariantCulture;
        return format
            .Replace("%d", now.ToString("dd", culture), StringComparison.Ordinal)
            .Replace("%b", now.ToString("MMM", culture), StringComparison.Ordinal)
            .Replace("%B", now.ToString("MMMM", culture), StringComparison.Ordinal)
            .Replace("%m", now.ToString("MM", culture), StringComparison.Ordinal)
            .Replace("%Y", now.ToString("yyyy", culture), StringComparison.Ordinal)
            .Replace("%y", now.ToString("yy", culture), StringComparison.Ordinal)
            .Replace("%H", now.ToString("HH", culture), StringComparison.Ordinal)
            .Replace("%M", now.ToString("mm", culture), StringComparison.Ordinal)
            .Replace("%A", now.ToString("dddd", culture), StringComparison.Ordinal)
            .Replace("%a", now.ToString("ddd", culture), StringComparison.Ordinal);
    }
}
