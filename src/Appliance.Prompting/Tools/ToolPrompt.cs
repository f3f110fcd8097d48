using System.Text;
using System.Text.Json;

namespace Appliance.Prompting;

/// <summary>
/// Tools for a chat template that does not render them itself (ChatML, the built-in formats, a model template that
/// never mentions tools): the conversation is rewritten in the Hermes convention, which such templates pass through as
/// text. The functions are described in the system message, earlier calls become <c>&lt;tool_call&gt;</c> blocks and
/// tool results become user turns inside <c>&lt;tool_response&gt;</c>.
/// </summary>
public static class ToolPrompt
{
    /// <summary>
    /// Renders with tools: by the template itself where it knows them, else through the rewritten conversation.
    /// <paramref name="format"/> is the format the answer will be read in (the model's setting): DeepSeek's template
    /// gets its own convention only when that is DeepSeek's, so that the prompt and the parser always agree.
    /// </summary>
    public static string Render(IChatTemplate template, IReadOnlyList<ChatMessage> messages, IReadOnlyList<ToolDefinition>? tools, bool addGenerationPrompt = true,
        ToolCallFormat? format = null, Reasoning.ReasoningSwitch? reasoning = null)
    {
        var hasToolTurns = messages.Any(m => m.Role == "tool" || m.ToolCalls is { Count: > 0 });
        if (tools is not { Count: > 0 } && !hasToolTurns)
        {
            return template.Render(messages, addGenerationPrompt, tools, reasoning);
        }

        if (DeepSeekFormatOf(template) is { } deepSeek && (format is null || format == deepSeek))
        {
            // DeepSeek's templates write earlier calls and their results in their own tokens but list no tools: they
            // are described in the system message, in the model's call format.
            var described = deepSeek == ToolCallFormat.DeepSeekV3 ? DescribeForDeepSeek(tools ?? []) : DescribeForDeepSeekV31(tools ?? []);
            return template.Render(tools is { Count: > 0 } ? WithSystemText(messages, described) : messages, addGenerationPrompt, reasoning: reasoning);
        }

        if (RendersTools(template))
        {
            return template.Render(hasToolTurns && WantsNineCharacterIds(template) ? [.. messages.Select(NineCharacterIds)] : messages, addGenerationPrompt, tools, reasoning);
        }

        return template.Render(Rewrite(messages, tools ?? []), addGenerationPrompt, reasoning: reasoning);
    }

    /// <summary>
    /// Mistral's templates refuse call ids other than nine letters or digits, while clients send OpenAI's "call_..."
    /// or ids of their own: those are mapped, the same way for a call and its result, to nine hex digits of a hash.
    /// </summary>
    private static bool WantsNineCharacterIds(IChatTemplate template) =>
        template.Source?.Contains("[TOOL_CALLS]", StringComparison.Ordinal) == true;

    private static ChatMessage NineCharacterIds(ChatMessage message) => message with
    {
        ToolCalls = message.ToolCalls?.Select(call => call with { Id = NineCharacterId(call.Id) }).ToList(),
        ToolCallId = message.ToolCallId is { } id ? NineCharacterId(id) : null,
    };

    private static string NineCharacterId(string id) =>
        id.Length == 9 && id.All(char.IsAsciiLetterOrDigit)
            ? id
            : Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(id)))[..9];

    /// <summary>Whether the template renders tools, tool calls and tool results on its own.</summary>
    public static bool RendersTools(IChatTemplate template) =>
        template.Source?.Contains("tools", StringComparison.Ordinal) == true;

    /// <summary>
    /// Whether the model is prompted to call in its own format: its template renders tools, or it is DeepSeek V3's or
    /// V3.1's (which render calls and results, and get the tools described in that format); otherwise in Hermes'.
    /// </summary>
    public static bool UsesModelFormat(IChatTemplate template) => RendersTools(template) || DeepSeekFormatOf(template) is not null;

    private static ToolCallFormat? DeepSeekFormatOf(IChatTemplate template) =>
        template.Source is { } source && ToolCallFormat.FromTemplate(source) is var format
            && (format == ToolCallFormat.DeepSeekV3 || format == ToolCallFormat.DeepSeekV31)
            ? format
            : null;

    /// <summary>The conversation in the Hermes convention, for templates that only know plain roles.</summary>
    public static IReadOnlyList<ChatMessage> Rewrite(IReadOnlyList<ChatMessage> messages, IReadOnlyList<ToolDefinition> tools)
    {
        var result = new List<ChatMessage>(messages.Count + 1);
        var system = tools.Count > 0 ? Describe(tools) : null;
        foreach (var message in messages)
        {
            if (system is not null && message.Role == "system")
            {
                result.Add(message with { Content = message.Content + "\n\n" + system });
                system = null;
                continue;
            }

            if (system is not null && message.Role == "user")
            {
                // No system message: the description opens the first user turn (some templates refuse a system role).
                result.Add(message with { Content = system + "\n\n" + message.Content });
                system = null;
                continue;
            }

            var rewritten = message switch
            {
                { Role: "tool" } => new ChatMessage("user", $"<tool_response>\n{message.Content}\n</tool_response>"),
                { ToolCalls: { Count: > 0 } calls } => new ChatMessage(message.Role, string.Concat(
                    (message.Content.Length > 0 ? message.Content + "\n" : string.Empty),
                    string.Join('\n', calls.Select(call => $"<tool_call>\n{CallJson(call.Name, call.Arguments)}\n</tool_call>")))),
                _ => message,
            };

            // Templates that insist on alternating turns (Gemma) would refuse a tool result beside a user turn: one turn.
            if (rewritten.Role == "user" && result.Count > 0 && result[^1].Role == "user" && (message.Role == "tool" || result[^1].Content.EndsWith("</tool_response>", StringComparison.Ordinal)))
            {
                result[^1] = result[^1] with { Content = result[^1].Content + "\n" + rewritten.Content };
                continue;
            }

            result.Add(rewritten);
        }

        if (system is not null)
        {
            result.Insert(0, new ChatMessage("system", system));
        }

        return result;
    }

    private static List<ChatMessage> WithSystemText(IReadOnlyList<ChatMessage> messages, string text)
    {
        var result = messages.ToList();
        var system = result.FindIndex(m => m.Role == "system");
        if (system >= 0)
        {
            result[system] = result[system] with { Content = result[system].Content + "\n\n" + text };
        }
        else
        {
            result.Insert(0, new ChatMessage("system", text));
        }

        return result;
    }

    private static string DescribeForDeepSeek(IReadOnlyList<ToolDefinition> tools)
    {
        var text = new StringBuilder("## Tools\nYou can call these functions, each described by a JSON object:\n");
        foreach (var tool in tools)
        {
            text.Append("```json\n").Append(FunctionJson(tool)).Append("\n```\n");
        }

        text.Append("To call functions, answer with nothing but the calls, one ").Append(DeepSeekToolCalls.CallBegin).Append(" block each:\n")
            .Append(DeepSeekToolCalls.CallsBegin).Append(DeepSeekToolCalls.CallBegin).Append("function").Append(DeepSeekToolCalls.NameSeparator)
            .Append("<function name>\n```json\n<arguments as a JSON object>\n```").Append(DeepSeekToolCalls.CallEnd).Append(DeepSeekToolCalls.CallsEnd);
        return text.ToString();
    }

    /// <summary>
    /// The tool description DeepSeek V3.1 was trained with (its model card's "## Tools" section): each function's name,
    /// description and parameter schema, then the call layout, which the model follows to the letter.
    /// </summary>
    private static string DescribeForDeepSeekV31(IReadOnlyList<ToolDefinition> tools)
    {
        var text = new StringBuilder("## Tools\nYou have access to the following tools:\n");
        foreach (var tool in tools)
        {
            // Written as Python's json.dumps writes it (", " and ": "), as in the model's training data.
            text.Append("\n### ").Append(tool.Name).Append("\nDescription: ").Append(tool.Description ?? string.Empty)
                .Append("\n\nParameters: ").Append(Jinja.JinjaValues.ToJson(TemplateValues.FromJson(tool.Parameters), null)).Append('\n');
        }

        text.Append("\nIMPORTANT: ALWAYS adhere to this exact format for tool use:\n")
            .Append(DeepSeekToolCalls.CallsBegin).Append(DeepSeekToolCalls.CallBegin).Append("tool_call_name").Append(DeepSeekToolCalls.NameSeparator)
            .Append("tool_call_arguments").Append(DeepSeekToolCalls.CallEnd).Append("{additional_tool_calls}").Append(DeepSeekToolCalls.CallsEnd)
            .Append("\n\nWhere:\n\n- `tool_call_name` must be an exact match to one of the available tools\n")
            .Append("- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n")
            .Append("- For multiple tool calls, chain them directly without separators or spaces");
        return text.ToString();
    }

    private static string FunctionJson(ToolDefinition tool) => JsonSerializer.Serialize(new
    {
        type = "function",
        function = new { name = tool.Name, description = tool.Description ?? string.Empty, parameters = JsonDocument.Parse(tool.Parameters).RootElement },
    });

    private static string Describe(IReadOnlyList<ToolDefinition> tools)
    {
        var text = new StringBuilder();
        text.Append("You can call these functions. Each is described by a JSON object on its own line:\n<tools>\n");
        foreach (var tool in tools)
        {
            text.Append(FunctionJson(tool)).Append('\n');
        }

        text.Append("</tools>\nTo call a function, answer with one block per call and nothing else:\n<tool_call>\n{\"name\": \"<function name>\", \"arguments\": <arguments as a JSON object>}\n</tool_call>");
        return text.ToString();
    }

    private static string CallJson(string name, string arguments)
    {
        try
        {
            using var parsed = JsonDocument.Parse(arguments);
            return JsonSerializer.Serialize(new { name, arguments = parsed.RootElement });
        }
        catch (JsonException)
        {
            return JsonSerializer.Serialize(new { name, arguments }); // a call cut short: its text, as it was
        }
    }
}
