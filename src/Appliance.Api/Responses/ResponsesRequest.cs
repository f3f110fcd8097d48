using System.Text;
using System.Text.Json;
using Appliance.Api.OpenAi;
using Appliance.Prompting;

namespace Appliance.Api.Responses;

/// <summary>
/// A validated POST /v1/responses body, stateless: input (text or items), instructions, function and custom tools, text.format,
/// mapped onto the chat path's messages, settings, tools and response format. Nothing is stored, so store=true and
/// previous_response_id are refused by name.
/// </summary>
internal sealed partial record ResponsesRequest(GenerationSettings Settings, IReadOnlyList<ChatMessage> Messages, ToolUse Tools, ResponseFormat Format, string? Instructions, ReasoningRequest Reasoning)
{
    private static readonly HashSet<string> Known =
        ["model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "stream", "tools", "tool_choice", "parallel_tool_calls",
         "text", "store", "previous_response_id", "user", "metadata", "reasoning", "truncation", "include", "service_tier", "top_logprobs", "background", "prompt_cache_key", "safety_identifier",
         "client_metadata", "stream_options", "max_tool_calls", "prompt_cache_retention", "conversation", "prompt"];

    /// <summary>Tools the hosted service runs itself (web search...): none exists on an appliance, so they are left out, not refused (clients such as Codex offer them by default).</summary>
    private static readonly HashSet<string> HostedTools = ["web_search", "web_search_preview", "file_search", "code_interpreter", "image_generation", "computer_use_preview"];

    public static ResponsesRequest Read(JsonFields fields, ApiLimits limits)
    {
        fields.RejectUnknown(Known);
        if (fields.OptionalBool("store") == true)
        {
            throw new OpenAiRequestException(OpenAiError.Unsupported("store", "storing responses (this appliance is stateless: send store=false)"));
        }

        if (fields.Has("previous_response_id"))
        {
            throw new OpenAiRequestException(OpenAiError.Unsupported("previous_response_id", "continuing a stored response (send the conversation as input items)"));
        }

        foreach (var stateful in new[] { "conversation", "prompt" }.Where(fields.Has))
        {
            throw new OpenAiRequestException(OpenAiError.Unsupported(stateful, $"a stored {stateful} (this appliance is stateless)"));
        }

        if (fields.OptionalBool("background") == true)
        {
            throw new OpenAiRequestException(OpenAiError.Unsupported("background", "background responses"));
        }

        var stream = fields.OptionalBool("stream") ?? false;
        var askedMaxTokens = fields.OptionalInteger("max_output_tokens", 1, int.MaxValue);
        var settings = new GenerationSettings(
            fields.RequiredString("model"),
            stream,
            IncludeUsage: false,
            limits.CapMaxTokens(askedMaxTokens),
            (float?)fields.OptionalNumber("temperature", 0, 2),
            (float?)fields.OptionalNumber("top_p", 0, 1) is var topP && topP <= 0f ? throw new OpenAiRequestException(OpenAiError.Invalid("'top_p' must be greater than 0.", "top_p")) : topP,
            N: 1,
            Stop: [],
            Seed: null,
            PresencePenalty: 0,
            FrequencyPenalty: 0,
            TopK: null,
            MinP: null,
            RepetitionPenalty: null,
            Logprobs: false,
            TopLogprobs: 0,
            fields.OptionalString("user"),
            MaxTokensIsCeiling: limits.Caps(askedMaxTokens));
        var instructions = fields.OptionalString("instructions");
        var messages = new List<ChatMessage>();
        if (!string.IsNullOrEmpty(instructions))
        {
            messages.Add(new ChatMessage("system", instructions));
        }

        messages.AddRange(Input(fields.Element("input"), limits));
        var tools = ReadTools(fields);
        var format = ReadFormat(fields.Element("text")); // beside tools, the answer is either function calls or that JSON

        // Instructions and developer items become one system turn, consecutive turns of one role one turn: strict
        // templates (Mistral, Gemma) refuse anything else.
        return new ResponsesRequest(settings, ConsecutiveTurns.Join(messages), tools, format, instructions, ReadReasoning(fields));
    }

    /// <summary>reasoning.effort: none and minimal switch a reasoning model's thinking off, the others on; summary is accepted (no summaries are written).</summary>
    private static ReasoningRequest ReadReasoning(JsonFields fields)
    {
        if (fields.Element("reasoning") is not { } reasoning || reasoning.ValueKind == JsonValueKind.Null)
        {
            return ReasoningRequest.Default;
        }

        if (reasoning.ValueKind != JsonValueKind.Object)
        {
            throw JsonFields.TypeError("reasoning", "an object");
        }

        return reasoning.TryGetProperty("effort", out var effort) && effort.ValueKind != JsonValueKind.Null
            ? ReasoningRequest.FromEffort(effort.ValueKind == JsonValueKind.String ? effort.GetString() : throw JsonFields.TypeError("reasoning.effort", "a string"), "reasoning.effort")
            : ReasoningRequest.Default;
    }

    /// <summary>Input as text (one user message) or items: messages, function and custom tool calls and their outputs.</summary>
    private static List<ChatMessage> Input(JsonElement? input, ApiLimits limits)
    {
        switch (input)
        {
            case { ValueKind: JsonValueKind.String } text:
                return [new ChatMessage("user", text.GetString()!)];
            case { ValueKind: JsonValueKind.Array } items when items.GetArrayLength() > 0:
                if (items.GetArrayLength() > limits.MaxMessages)
                {
                    throw new OpenAiRequestException(OpenAiError.Invalid($"'input' holds more than {limits.MaxMessages} items.", "input"));
                }

                break;
            case null or { ValueKind: JsonValueKind.Null }:
                throw new OpenAiRequestException(OpenAiError.Invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter"));
            default:
                throw JsonFields.TypeError("input", "a string or a non-empty array of items");
        }

        var messages = new List<ChatMessage>();
        string? thought = null; // a reasoning item's text, for the assistant turn that follows it
        var index = 0;
        foreach (var item in input.Value.EnumerateArray())
        {
            var param = $"input[{index++}]";
            if (item.ValueKind != JsonValueKind.Object)
            {
                throw JsonFields.TypeError(param, "an object");
            }

            var type = item.TryGetProperty("type", out var t) ? t.ValueKind == JsonValueKind.String ? t.GetString() : throw JsonFields.TypeError($"{param}.type", "a string") : "message";
            switch (type)
            {
                case "message":
                    var message = Message(item, param);
                    messages.Add(message.Role == "assistant" && thought is not null ? message with { Reasoning = thought } : message);
                    thought = null;
                    break;
                case "function_call" or "custom_tool_call":
                    var call = new ToolCall(Required(item, "call_id", param), Required(item, "name", param), type == "function_call" ? Arguments(item, param) : FreeformInput.Arguments(Text(item, "input", param)));
                    if (messages.Count > 0 && messages[^1] is { Role: "assistant" } previous)
                    {
                        messages[^1] = previous with { ToolCalls = [.. previous.ToolCalls ?? [], call], Reasoning = previous.Reasoning ?? thought };
                    }
                    else
                    {
                        messages.Add(new ChatMessage("assistant", string.Empty, [call]) { Reasoning = thought });
                    }

                    thought = null;
                    break;
                case "function_call_output" or "custom_tool_call_output":
                    messages.Add(new ChatMessage("tool", Output(item, param), ToolCallId: Required(item, "call_id", param)));
                    thought = null;
                    break;
                case "reasoning":
                    thought = ThoughtText(item, param);
                    break;
                case "item_reference":
                    // The Vercel AI SDK sends these by default (its store option defaults to true) from the second turn.
                    throw new OpenAiRequestException(OpenAiError.Invalid(
                        $"'{param}.type': an item_reference names an item of a response stored by the server, and this appliance stores none: send the item itself "
                        + "(with the Vercel AI SDK, set providerOptions.openai.store to false).", $"{param}.type", "unsupported_parameter"));
                default:
                    throw new OpenAiRequestException(OpenAiError.Unsupported($"{param}.type", $"input items of type '{type}'"));
            }
        }

        return messages;
    }

    /// <summary>
    /// An earlier answer's thought: the text of its reasoning_text parts, for templates that render it (Qwen3's). A
    /// summary or encrypted_content (another service's) carries nothing this model wrote, so it gives none.
    /// </summary>
    private static string? ThoughtText(JsonElement item, string param)
    {
        if (!item.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            throw JsonFields.TypeError($"{param}.content", "an array of reasoning_text parts");
        }

        var parts = content.EnumerateArray().Select((part, i) =>
            part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == "reasoning_text" && part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String
                ? text.GetString()!
                : throw new OpenAiRequestException(OpenAiError.Invalid($"'{param}.content[{i}]' must be a reasoning_text part with its text.", $"{param}.content[{i}]"))).ToList();
        return parts.Count == 0 ? null : string.Join("\n\n", parts);
    }

    /// <summary>A function's output: text, or text parts (other parts refused by name).</summary>
    private static string Output(JsonElement item, string param) => item.TryGetProperty("output", out var output) ? output.ValueKind switch
    {
        JsonValueKind.String => output.GetString()!,
        JsonValueKind.Array => string.Join("\n\n", output.EnumerateArray().Select((part, i) =>
            part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var t) && t.GetString() is "input_text" or "output_text" && part.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String
                ? text.GetString()!
                : throw new OpenAiRequestException(OpenAiError.Unsupported($"{param}.output[{i}]", "tool output other than text")))),
        _ => throw JsonFields.TypeError($"{param}.output", "a string or text parts"),
    } : throw new OpenAiRequestException(OpenAiError.Invalid($"Missing required parameter: '{param}.output'.", $"{param}.output", "missing_required_parameter"));

    private static ChatMessage Message(JsonElement item, string param)
    {
        var role = item.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()! : null;
        role = role switch
        {
            "user" or "assistant" or "system" => role,
            "developer" => "system",
            _ => throw new OpenAiRequestException(OpenAiError.Invalid($"'{param}.role' must be user, assistant, system or developer.", $"{param}.role")),
        };
        if (!item.TryGetProperty("content", out var content))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"Missing required parameter: '{param}.content'.", $"{param}.content", "missing_required_parameter"));
        }

        if (content.ValueKind == JsonValueKind.String)
        {
            return new ChatMessage(role, content.GetString()!);
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            throw JsonFields.TypeError($"{param}.content", "a string or an array of content parts");
        }

        var text = new StringBuilder();
        var part = 0;
        foreach (var piece in content.EnumerateArray())
        {
            var partParam = $"{param}.content[{part++}]";
            var type = piece.ValueKind == JsonValueKind.Object && piece.TryGetProperty("type", out var t) ? t.GetString() : null;
            if (type is not ("input_text" or "output_text" or "text"))
            {
                throw new OpenAiRequestException(OpenAiError.Unsupported($"{partParam}.type", $"content of type '{type}' (only text)"));
            }

            // Parts on lines of their own, as in chat completions.
            text.Append(text.Length > 0 ? "\n" : string.Empty)
                .Append(piece.TryGetProperty("text", out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : throw JsonFields.TypeError($"{partParam}.text", "a string"));
        }

        return new ChatMessage(role, text.ToString());
    }

    private static string Arguments(JsonElement item, string param)
    {
        var arguments = item.TryGetProperty("arguments", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString()! : throw JsonFields.TypeError($"{param}.arguments", "a string");
        string? problem;
        try
        {
            using var parsed = JsonDocument.Parse(arguments.Length == 0 ? "{}" : arguments);
            problem = JsonFields.Unreadable(parsed.RootElement, "arguments", duplicateKeys: false); // read when the history is rendered
        }
        catch (JsonException)
        {
            problem = null; // a call cut short by max_output_tokens comes back as it was: rendered as its text
        }

        return problem is null
            ? arguments.Length == 0 ? "{}" : arguments
            : throw new OpenAiRequestException(OpenAiError.Invalid($"'{param}.arguments' cannot be read: {problem}", $"{param}.arguments"));
    }

    /// <summary>A string field that may be empty (a custom tool's input).</summary>
    private static string Text(JsonElement item, string name, string param) =>
        item.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : throw JsonFields.TypeError($"{param}.{name}", "a string");

    private static string Required(JsonElement item, string name, string param) =>
        item.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString()!.Length > 0
            ? value.GetString()!
            : throw new OpenAiRequestException(OpenAiError.Invalid($"Missing required parameter: '{param}.{name}'.", $"{param}.{name}", "missing_required_parameter"));

    /// <summary>
    /// The Responses API's flat function and custom tools, re-shaped as chat's and read by the same rules (a custom
    /// tool's flat grammar format reads as chat's nested one: <see cref="CustomTools"/>).
    /// </summary>
    private static ToolUse ReadTools(JsonFields fields)
    {
        var kept = fields.Element("tools") is { ValueKind: JsonValueKind.Array } list
            ? list.EnumerateArray()
                .Select((tool, index) => (Tool: tool, Index: index, Type: tool.ValueKind == JsonValueKind.Object && tool.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null))
                .Where(tool => tool.Type is null || !HostedTools.Contains(tool.Type))
                .ToList()
            : null;
        var tools = kept?
                .Select(tool => tool.Type switch
                {
                    "function" => new Dictionary<string, object?>
                    {
                        ["type"] = "function",
                        ["function"] = tool.Tool.EnumerateObject().Where(p => p.Name != "type").ToDictionary(p => p.Name, p => (object?)p.Value),
                    },
                    "custom" => new Dictionary<string, object?>
                    {
                        ["type"] = "custom",
                        ["custom"] = tool.Tool.EnumerateObject().Where(p => p.Name != "type").ToDictionary(p => p.Name, p => (object?)p.Value),
                    },
                    _ => throw new OpenAiRequestException(OpenAiError.Unsupported("tools", $"tools of type '{tool.Type ?? "?"}' (only function and custom)")),
                }).ToList();
        tools = tools is { Count: 0 } ? null : tools; // an empty list (what is left once hosted tools are gone) is no tools
        var choice = fields.Element("tool_choice") is { ValueKind: JsonValueKind.Object } named && named.TryGetProperty("name", out var name)
            ? (object)new Dictionary<string, object?> { ["type"] = "function", ["function"] = new Dictionary<string, object?> { ["name"] = name } }
            : fields.Element("tool_choice");
        var chat = JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["tools"] = tools,
            ["tool_choice"] = tools is null && choice is JsonElement { ValueKind: JsonValueKind.String } mode && mode.GetString() is "auto" or "none" ? null : choice,
            ["parallel_tool_calls"] = fields.Element("parallel_tool_calls"),
        }.Where(p => p.Value is not null).ToDictionary());
        using var document = JsonDocument.Parse(chat);
        try
        {
            return ToolUse.Read(new JsonFields(document));
        }
        catch (OpenAiRequestException refused) when (refused.Error.Param is { } param && ChatToolPath().Match(param) is { Success: true } path)
        {
            // Named as this request wrote it: the tool's own index (hosted tools were left out) and its flat fields.
            var index = int.Parse(path.Groups["index"].ValueSpan, System.Globalization.CultureInfo.InvariantCulture);
            var flat = $"tools[{(kept is not null && index < kept.Count ? kept[index].Index : index)}]{path.Groups["rest"].Value}";
            throw new OpenAiRequestException(refused.Error with { Param = flat, Message = refused.Error.Message.Replace(param, flat, StringComparison.Ordinal) });
        }
    }

    /// <summary>A tool's field as chat's shape names it: tools[i], then .function or .custom, then the field.</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"^tools\[(?<index>\d+)\](?:\.(?:function|custom))?(?<rest>.*)$")]
    private static partial System.Text.RegularExpressions.Regex ChatToolPath();

    private static ResponseFormat ReadFormat(JsonElement? text)
    {
        if (text is not { ValueKind: JsonValueKind.Object } config || !config.TryGetProperty("format", out var format) || format.ValueKind != JsonValueKind.Object)
        {
            return ResponseFormat.Text;
        }

        // The Responses API writes json_schema's fields beside its type; chat nests them under "json_schema".
        var type = format.TryGetProperty("type", out var t) ? t.GetString() : null;
        var chat = type == "json_schema"
            ? JsonSerializer.Serialize(new { response_format = new { type, json_schema = format.EnumerateObject().Where(p => p.Name != "type").ToDictionary(p => p.Name, p => p.Value) } })
            : JsonSerializer.Serialize(new { response_format = format });
        using var document = JsonDocument.Parse(chat);
        try
        {
            return ResponseFormat.Read(new JsonFields(document));
        }
        catch (OpenAiRequestException refused)
        {
            throw new OpenAiRequestException(refused.Error with { Param = refused.Error.Param?.Replace("response_format.json_schema", "text.format", StringComparison.Ordinal).Replace("response_format", "text.format", StringComparison.Ordinal) });
        }
    }
}
