using System.Text.Json;

namespace Appliance.Prompting;

/// <summary>
/// Messages and tools as the values a Jinja chat template sees, shaped as transformers passes them: a tool call's
/// arguments as a mapping (templates write them with tojson), tools as {"type": "function", "function": {...}}.
/// </summary>
/// <remarks>
/// <c>callsAsWritten</c> shapes calls for DeepSeek V3's and V3.1's templates instead: it writes the arguments by string
/// concatenation (a mapping would fail) and tells a turn of calls by its content being none.
/// </remarks>
internal static class TemplateValues
{
    public static List<object?> Messages(IReadOnlyList<ChatMessage> messages, bool callsAsWritten = false) =>
        [.. messages.Select(message => Message(message, callsAsWritten))];

    public static List<object?> Tools(IReadOnlyList<ToolDefinition> tools) => [.. tools.Select(tool => (object?)new Dictionary<string, object?>(StringComparer.Ordinal)
    {
        ["type"] = "function",
        ["function"] = Function(tool),
    })];

    private static Dictionary<string, object?> Function(ToolDefinition tool)
    {
        var function = new Dictionary<string, object?>(StringComparer.Ordinal) { ["name"] = tool.Name };
        if (tool.Description is not null)
        {
            function["description"] = tool.Description;
        }

        function["parameters"] = FromJson(tool.Parameters);
        return function;
    }

    private static object? Message(ChatMessage message, bool callsAsWritten)
    {
        var value = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["role"] = message.Role,
            ["content"] = message.Content, // "" rather than None beside tool calls: templates call string methods on it
        };
        if (message.ToolCalls is { Count: > 0 } calls)
        {
            if (callsAsWritten)
            {
                // DeepSeek's template shows a turn's calls only when its content is none, and its text otherwise: the
                // calls matter more to what follows (their results), so a preamble beside them is left out.
                value["content"] = null;
            }

            value["tool_calls"] = calls.Select(call => (object?)new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["id"] = call.Id,
                ["type"] = "function",
                ["function"] = new Dictionary<string, object?>(StringComparer.Ordinal)
                {
                    ["name"] = call.Name,
                    ["arguments"] = callsAsWritten ? call.Arguments : FromJson(call.Arguments),
                },
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

        if (message.Name is not null)
        {
            value["name"] = message.Name;
        }

        return value;
    }

    /// <summary>JSON text as Jinja values (mappings keep their key order); text that is not JSON stays text.</summary>
    public static object? FromJson(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return FromJson(document.RootElement);
        }
        catch (JsonException)
        {
            return json;
        }
    }

    private static object? FromJson(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => element.EnumerateObject().Aggregate(new Dictionary<string, object?>(StringComparer.Ordinal), (map, p) =>
        {
            map[p.Name] = FromJson(p.Value);
            return map;
        }),
        JsonValueKind.Array => element.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.String => element.GetString(),
        // Boxed apart: a conditional of long and double would be a double, and 17 would render as 17.0.
        JsonValueKind.Number => element.TryGetInt64(out var whole) ? (object)whole : element.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };
}
