using System.Text.Json;
using Appliance.Prompting;

namespace Appliance.Tests.Common;

/// <summary>
/// Renders chat templates with the real Jinja2 (Debian's python3-jinja2, set up as transformers does:
/// tests/reference-py/render_chat_template.py), the reference for the appliance's own interpreter.
/// </summary>
public static class ReferenceChatTemplates
{
    /// <summary>
    /// Renders as transformers' apply_chat_template does: messages in OpenAI's shape (a call's arguments as a mapping,
    /// as transformers hands them to templates) and, when given, the tools as {"type": "function", "function": {...}}.
    /// With <paramref name="callsAsSent"/>, calls are as OpenAI's clients send them when a turn holds only calls:
    /// arguments as a JSON string and content null, the shape DeepSeek V3's template expects.
    /// </summary>
    public static string Render(string template, IReadOnlyList<ChatMessage> messages, string? bosToken, string? eosToken, bool addGenerationPrompt, string today,
        IReadOnlyList<ToolDefinition>? tools = null, bool callsAsSent = false, IReadOnlyDictionary<string, object?>? variables = null)
    {
        return ReferencePython.Run("render_chat_template.py", new
        {
            template,
            messages = messages.Select(message => Message(message, callsAsSent)),
            tools = tools?.Select(Tool),
            bos_token = bosToken,
            eos_token = eosToken,
            add_generation_prompt = addGenerationPrompt,
            today,
            variables,
        }, "python3-jinja2");
    }

    private static Dictionary<string, object?> Message(ChatMessage message, bool callsAsSent)
    {
        var value = new Dictionary<string, object?> { ["role"] = message.Role, ["content"] = message.Content };
        if (message.ToolCalls is { Count: > 0 } calls)
        {
            if (callsAsSent)
            {
                value["content"] = null;
            }

            value["tool_calls"] = calls.Select(call => new
            {
                id = call.Id,
                type = "function",
                function = new { name = call.Name, arguments = callsAsSent ? (object)call.Arguments : JsonDocument.Parse(call.Arguments).RootElement },
            }).ToList();
        }

        if (message.ToolCallId is not null)
        {
            value["tool_call_id"] = message.ToolCallId;
        }

        if (message.Reasoning is not null)
        {
            value["reasoning_content"] = message.Reasoning;
        }

        return value;
    }

    private static object Tool(ToolDefinition tool)
    {
        var function = new Dictionary<string, object?> { ["name"] = tool.Name };
        if (tool.Description is not null)
        {
            function["description"] = tool.Description;
        }

        function["parameters"] = JsonDocument.Parse(tool.Parameters).RootElement;
        return new { type = "function", function };
    }

    /// <summary>A family's chat template, BOS and EOS from its real tokenizer_config.json.</summary>
    public static (string Template, string? Bos, string? Eos) ForFamily(string family)
    {
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(ReferenceTokenizers.ModelFolder(family), "tokenizer_config.json")));
        var root = config.RootElement;
        string? Token(string name) => root.TryGetProperty(name, out var value) ? value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object => value.GetProperty("content").GetString(),
            _ => null,
        } : null;
        return (root.GetProperty("chat_template").GetString()!, Token("bos_token"), Token("eos_token"));
    }
}
