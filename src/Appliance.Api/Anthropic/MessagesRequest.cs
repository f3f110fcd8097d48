using System.Text;
using System.Text.Json;
using Appliance.Api.OpenAi;
using Appliance.Prompting;

namespace Appliance.Api.Anthropic;

/// <summary>A validated POST /v1/messages (or /v1/messages/count_tokens) body, mapped onto the chat path's types.</summary>
internal sealed record MessagesRequest(GenerationSettings Settings, IReadOnlyList<ChatMessage> Messages, ToolUse Tools, ReasoningRequest Reasoning)
{
    // context_management (Claude Code sends it: clearing old tool results server-side) and output_config's effort are
    // hints the appliance has nothing to act on; accepted and ignored, so those clients work.
    private static readonly HashSet<string> Known =
        ["model", "max_tokens", "messages", "system", "stop_sequences", "temperature", "top_p", "top_k", "stream", "tools", "tool_choice", "metadata", "service_tier", "thinking",
         "context_management", "output_config"];

    private static readonly HashSet<string> CountTokensKnown = ["model", "messages", "system", "tools", "tool_choice", "thinking", "context_management", "output_config"];

    public static MessagesRequest Read(JsonFields fields, ApiLimits limits, bool countOnly = false)
    {
        fields.RejectUnknown(countOnly ? CountTokensKnown : Known);
        if (fields.Element("output_config") is { } output)
        {
            if (output.ValueKind != JsonValueKind.Object)
            {
                throw JsonFields.TypeError("output_config", "an object");
            }

            foreach (var property in output.EnumerateObject().Where(p => p.Name != "effort"))
            {
                // A JSON schema for the answer is not ignored: refused by name, as elsewhere.
                throw new OpenAiRequestException(property.Name == "format"
                    ? OpenAiError.Unsupported("output_config.format", "structured outputs on the Messages API (use /v1/chat/completions with response_format)")
                    : OpenAiError.Invalid($"Unrecognized field: output_config.{property.Name}", $"output_config.{property.Name}", "unknown_parameter"));
            }
        }
        // Claude clients send the model's own maximum as max_tokens: it is a ceiling here, capped to what the appliance allows.
        long? askedMaxTokens = countOnly ? null : fields.OptionalInteger("max_tokens", 1, int.MaxValue)
            ?? throw new OpenAiRequestException(OpenAiError.Invalid("max_tokens: Field required", "max_tokens", "missing_required_parameter"));
        int? maxTokens = askedMaxTokens is { } asked ? (int)Math.Min(asked, limits.MaxTokens) : null;
        var stream = !countOnly && (fields.OptionalBool("stream") ?? false);
        var user = fields.Element("metadata") is { ValueKind: JsonValueKind.Object } metadata && metadata.TryGetProperty("user_id", out var id) && id.ValueKind == JsonValueKind.String
            ? id.GetString()
            : null;
        var settings = new GenerationSettings(
            fields.RequiredString("model"),
            stream,
            IncludeUsage: false,
            maxTokens,
            (float?)fields.OptionalNumber("temperature", 0, 1),
            TopP(fields),
            N: 1,
            StopSequences(fields),
            Seed: null,
            PresencePenalty: 0,
            FrequencyPenalty: 0,
            (int?)fields.OptionalInteger("top_k", 0, 100_000),
            MinP: null,
            RepetitionPenalty: null,
            Logprobs: false,
            TopLogprobs: 0,
            user);
        var messages = new List<ChatMessage>();
        if (System(fields.Element("system")) is { Length: > 0 } system)
        {
            messages.Add(new ChatMessage("system", system));
        }

        foreach (var turn in ReadMessages(fields.Element("messages"), limits))
        {
            // Anthropic joins consecutive turns of one role; templates that insist on alternation would refuse them.
            if (messages.Count > 0 && messages[^1] is { Role: "user" or "assistant" } previous && previous.Role == turn.Role
                && previous.ToolCalls is null && turn.ToolCalls is null)
            {
                messages[^1] = previous with { Content = previous.Content + "\n\n" + turn.Content };
                continue;
            }

            messages.Add(turn);
        }

        var tools = ReadTools(fields);
        if (tools.Forced && settings.Stop.Count > 0)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("stop_sequences cannot be combined with a tool_choice that requires a tool.", "stop_sequences"));
        }

        var reasoning = Thinking(fields, askedMaxTokens);
        if (reasoning.Thinking == true && messages.Count > 1 && messages[^1] is { Role: "assistant", ToolCalls: null })
        {
            // As Anthropic's API: the answer would continue the prefill, leaving no place for a thought before it.
            throw new OpenAiRequestException(OpenAiError.Invalid("thinking cannot be combined with a prefilled answer (a last assistant message).", "thinking"));
        }

        return new MessagesRequest(settings, messages, tools, reasoning);
    }

    /// <summary>
    /// thinking: enabled (with budget_tokens, below max_tokens), adaptive (the model's own measure) or disabled, for
    /// reasoning models; a model that does not think answers without a thought either way.
    /// </summary>
    private static ReasoningRequest Thinking(JsonFields fields, long? maxTokens)
    {
        if (fields.Element("thinking") is not { } thinking || thinking.ValueKind == JsonValueKind.Null)
        {
            return ReasoningRequest.Default;
        }

        var type = thinking.ValueKind == JsonValueKind.Object && thinking.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        var omitted = thinking.ValueKind == JsonValueKind.Object && thinking.TryGetProperty("display", out var display) && display.ValueKind != JsonValueKind.Null
            ? (display.ValueKind == JsonValueKind.String ? display.GetString() : null) switch
            {
                "omitted" => true,
                "summarized" => false, // the whole thought: these models write no summary of it
                _ => throw new OpenAiRequestException(OpenAiError.Invalid("thinking.display: must be 'summarized' or 'omitted'.", "thinking.display")),
            }
            : false;
        switch (type)
        {
            case "disabled":
                return new ReasoningRequest(false, null, null);
            case "adaptive":
                return new ReasoningRequest(true, null, null) { Omitted = omitted };
            case "enabled":
                var budget = thinking.TryGetProperty("budget_tokens", out var b) && b.ValueKind == JsonValueKind.Number && b.TryGetInt32(out var value) && value >= 1
                    ? value
                    : throw new OpenAiRequestException(OpenAiError.Invalid("thinking.budget_tokens: Field required (a positive integer)", "thinking.budget_tokens", "missing_required_parameter"));
                return maxTokens is { } max && budget >= max
                    ? throw new OpenAiRequestException(OpenAiError.Invalid($"max_tokens must be greater than thinking.budget_tokens ({budget}).", "thinking.budget_tokens"))
                    : new ReasoningRequest(true, null, budget) { Omitted = omitted };
            default:
                throw new OpenAiRequestException(OpenAiError.Invalid("thinking.type: must be 'enabled', 'adaptive' or 'disabled'.", "thinking.type"));
        }
    }

    private static float? TopP(JsonFields fields)
    {
        var topP = (float?)fields.OptionalNumber("top_p", 0, 1);
        return topP is <= 0f ? throw new OpenAiRequestException(OpenAiError.Invalid("top_p: must be greater than 0.", "top_p")) : topP;
    }

    private static List<string> StopSequences(JsonFields fields)
    {
        if (fields.Element("stop_sequences") is not { } stops || stops.ValueKind == JsonValueKind.Null)
        {
            return [];
        }

        var list = stops.ValueKind == JsonValueKind.Array && stops.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String && s.GetString()!.Length > 0)
            ? stops.EnumerateArray().Select(s => s.GetString()!).ToList()
            : throw JsonFields.TypeError("stop_sequences", "an array of non-empty strings");
        return list.Count <= 16 ? list : throw new OpenAiRequestException(OpenAiError.Invalid("stop_sequences: at most 16.", "stop_sequences"));
    }

    private static string? System(JsonElement? system) => system switch
    {
        null or { ValueKind: JsonValueKind.Null } => null,
        { ValueKind: JsonValueKind.String } text => text.GetString(),
        { ValueKind: JsonValueKind.Array } blocks => string.Join("\n\n", blocks.EnumerateArray().Select((b, i) => Text(b, $"system[{i}]"))),
        _ => throw JsonFields.TypeError("system", "a string or an array of text blocks"),
    };

    private static IEnumerable<ChatMessage> ReadMessages(JsonElement? element, ApiLimits limits)
    {
        if (element is not { ValueKind: JsonValueKind.Array } messages || messages.GetArrayLength() == 0)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("messages: at least one message is required.", "messages", "missing_required_parameter"));
        }

        if (messages.GetArrayLength() > limits.MaxMessages)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"messages: the limit is {limits.MaxMessages} messages.", "messages"));
        }

        var index = 0;
        foreach (var message in messages.EnumerateArray())
        {
            var param = $"messages.{index++}";
            var role = message.ValueKind == JsonValueKind.Object && message.TryGetProperty("role", out var r) && r.GetString() is "user" or "assistant"
                ? r.GetString()!
                : throw new OpenAiRequestException(OpenAiError.Invalid($"{param}.role: must be 'user' or 'assistant'.", $"{param}.role"));
            if (!message.TryGetProperty("content", out var content))
            {
                throw new OpenAiRequestException(OpenAiError.Invalid($"{param}.content: Field required", $"{param}.content", "missing_required_parameter"));
            }

            foreach (var turn in Turns(role, content, param))
            {
                yield return turn;
            }
        }
    }

    /// <summary>One Anthropic message as chat turns: text, tool_use blocks as tool calls, tool_result blocks as tool turns.</summary>
    private static IEnumerable<ChatMessage> Turns(string role, JsonElement content, string param)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            yield return new ChatMessage(role, content.GetString()!);
            yield break;
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            throw JsonFields.TypeError($"{param}.content", "a string or an array of content blocks");
        }

        var text = new StringBuilder();
        var thought = new StringBuilder();
        var calls = new List<ToolCall>();
        var results = new List<ChatMessage>();
        var index = 0;
        foreach (var block in content.EnumerateArray())
        {
            var blockParam = $"{param}.content.{index++}";
            var type = block.ValueKind == JsonValueKind.Object && block.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            switch (type)
            {
                case "text":
                    text.Append(text.Length > 0 ? "\n\n" : string.Empty).Append(Text(block, blockParam));
                    break;
                case "tool_use" when role == "assistant":
                    calls.Add(new ToolCall(
                        Required(block, "id", blockParam),
                        Required(block, "name", blockParam),
                        block.TryGetProperty("input", out var input) && input.ValueKind == JsonValueKind.Object ? input.GetRawText() : throw JsonFields.TypeError($"{blockParam}.input", "an object")));
                    break;
                case "tool_result" when role == "user":
                    var failed = block.TryGetProperty("is_error", out var isError) && isError.ValueKind == JsonValueKind.True;
                    results.Add(new ChatMessage("tool", (failed ? "Error: " : string.Empty) + ResultText(block, blockParam), ToolCallId: Required(block, "tool_use_id", blockParam)));
                    break;
                case "thinking" when role == "assistant":
                    // An earlier answer's thought, handed to templates that render it (Qwen3's, after the last question).
                    thought.Append(thought.Length > 0 ? "\n\n" : string.Empty).Append(block.TryGetProperty("thinking", out var th) && th.ValueKind == JsonValueKind.String
                        ? th.GetString()
                        : throw new OpenAiRequestException(OpenAiError.Invalid($"{blockParam}.thinking: Field required", $"{blockParam}.thinking", "missing_required_parameter")));
                    break;
                case "redacted_thinking" when role == "assistant":
                    break; // encrypted by another service: nothing this model could read
                case "image" or "document" or "thinking" or "redacted_thinking" or "server_tool_use" or "search_result":
                    throw new OpenAiRequestException(OpenAiError.Unsupported($"{blockParam}.type", $"content blocks of type '{type}'"));
                default:
                    throw new OpenAiRequestException(OpenAiError.Invalid($"{blockParam}.type: '{type}' is not a valid content block here.", $"{blockParam}.type"));
            }
        }

        // Tool results answer the previous assistant turn, so they come before any text the user adds.
        foreach (var result in results)
        {
            yield return result;
        }

        if (text.Length > 0 || calls.Count > 0 || results.Count == 0)
        {
            yield return new ChatMessage(role, text.ToString(), calls.Count > 0 ? calls : null) { Reasoning = thought.Length > 0 ? thought.ToString() : null };
        }
    }

    private static string ResultText(JsonElement block, string param) => block.TryGetProperty("content", out var content) ? content.ValueKind switch
    {
        JsonValueKind.String => content.GetString()!,
        JsonValueKind.Array => string.Join("\n\n", content.EnumerateArray().Select((b, i) => Text(b, $"{param}.content.{i}"))),
        JsonValueKind.Null => string.Empty,
        _ => throw JsonFields.TypeError($"{param}.content", "a string or text blocks"),
    } : string.Empty;

    private static string Text(JsonElement block, string param) =>
        block.ValueKind == JsonValueKind.Object && block.TryGetProperty("type", out var t) && t.GetString() == "text" && block.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String
            ? text.GetString()!
            : throw new OpenAiRequestException(OpenAiError.Invalid($"{param}: expected a text block.", param));

    private static string Required(JsonElement block, string name, string param) =>
        block.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString()!.Length > 0
            ? value.GetString()!
            : throw new OpenAiRequestException(OpenAiError.Invalid($"{param}.{name}: Field required", $"{param}.{name}", "missing_required_parameter"));

    /// <summary>Anthropic's tools (name, description, input_schema) and tool_choice (auto, any, tool, none) as the chat path's.</summary>
    private static ToolUse ReadTools(JsonFields fields)
    {
        var tools = new List<ToolDefinition>();
        if (fields.Element("tools") is { ValueKind: JsonValueKind.Array } list)
        {
            if (list.GetArrayLength() > 128)
            {
                throw new OpenAiRequestException(OpenAiError.Invalid("tools: at most 128.", "tools"));
            }

            var index = 0;
            foreach (var tool in list.EnumerateArray())
            {
                var param = $"tools.{index++}";
                if (tool.ValueKind == JsonValueKind.Object && tool.TryGetProperty("type", out var type) && type.GetString() is { } kind && kind != "custom")
                {
                    throw new OpenAiRequestException(OpenAiError.Unsupported($"{param}.type", $"server tools ('{kind}')"));
                }

                var name = Required(tool, "name", param);
                if (name.Length > 128 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
                {
                    throw new OpenAiRequestException(OpenAiError.Invalid($"{param}.name: letters, digits, underscores and dashes, at most 128.", $"{param}.name"));
                }

                var schema = tool.TryGetProperty("input_schema", out var s) && s.ValueKind == JsonValueKind.Object
                    ? s.TryGetProperty("type", out var schemaType) && schemaType.GetString() == "object"
                        ? s.GetRawText()
                        : throw new OpenAiRequestException(OpenAiError.Invalid($"{param}.input_schema.type: must be 'object'.", $"{param}.input_schema.type"))
                    : throw new OpenAiRequestException(OpenAiError.Invalid($"{param}.input_schema: Field required", $"{param}.input_schema", "missing_required_parameter"));
                var description = tool.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
                tools.Add(tools.Any(existing => existing.Name == name)
                    ? throw new OpenAiRequestException(OpenAiError.Invalid($"{param}.name: '{name}' is listed twice.", $"{param}.name"))
                    : new ToolDefinition(name, description, schema));
            }
        }
        else if (fields.Has("tools"))
        {
            throw JsonFields.TypeError("tools", "an array");
        }

        if (fields.Element("tool_choice") is not { ValueKind: JsonValueKind.Object } choice)
        {
            return fields.Has("tool_choice") ? throw JsonFields.TypeError("tool_choice", "an object") : new ToolUse(tools, tools.Count > 0 ? "auto" : "none", null, true);
        }

        var parallel = !(choice.TryGetProperty("disable_parallel_tool_use", out var disable) && disable.ValueKind == JsonValueKind.True);
        var mode = choice.TryGetProperty("type", out var m) ? m.GetString() : null;
        return mode switch
        {
            "auto" => new ToolUse(tools, tools.Count > 0 ? "auto" : "none", null, parallel),
            "none" => new ToolUse(tools, "none", null, parallel),
            "any" when tools.Count > 0 => new ToolUse(tools, "required", null, parallel),
            "tool" when choice.TryGetProperty("name", out var n) && tools.Any(x => x.Name == n.GetString()) => new ToolUse(tools, "function", n.GetString(), parallel),
            _ => throw new OpenAiRequestException(OpenAiError.Invalid("tool_choice: must be auto, any (with tools), none, or tool with the name of one of the tools.", "tool_choice")),
        };
    }
}
