using System.Text;
using System.Text.Json;
using Appliance.Prompting;

namespace Appliance.Api.OpenAi;

/// <summary>A validated POST /v1/chat/completions body.</summary>
internal sealed record ChatCompletionRequest(GenerationSettings Settings, IReadOnlyList<ChatMessage> Messages, ResponseFormat Format, ToolUse Tools, ReasoningRequest Reasoning)
{
    /// <summary>Fields OpenAI defines that this appliance cannot honour yet: refused by name, never ignored.</summary>
    private static readonly Dictionary<string, string> UnsupportedFields = new()
    {
        ["functions"] = "function calling",
        ["function_call"] = "function calling",
        ["audio"] = "audio output",
        ["prediction"] = "predicted outputs",
        ["web_search_options"] = "web search",
    };

    private static readonly HashSet<string> Known =
    [
        .. GenerationSettings.CommonFields, "messages", "max_completion_tokens", "logprobs", "top_logprobs",
        .. UnsupportedFields.Keys, "response_format", "logit_bias", "modalities", "store", "metadata", "tools", "tool_choice", "parallel_tool_calls",
        "reasoning_effort", "chat_template_kwargs",
        // Hints for OpenAI's own caching, abuse monitoring and answer length (the SDKs and AI SDK providers pass them
        // through): nothing to honour here, so accepted and ignored.
        "prompt_cache_key", "prompt_cache_retention", "safety_identifier", "verbosity",
    ];

    public static ChatCompletionRequest Read(JsonFields fields, ApiLimits limits)
    {
        fields.RejectUnknown(Known);
        foreach (var (name, what) in UnsupportedFields)
        {
            if (fields.Has(name))
            {
                throw new OpenAiRequestException(OpenAiError.Unsupported(name, what));
            }
        }

        RejectUnsupportedOptions(fields);
        // A ceiling, capped to what the appliance allows (clients set the model's advertised maximum, 8k-32k), as on /v1/messages.
        var askedMaxTokens = fields.OptionalInteger("max_completion_tokens", 1, int.MaxValue) ?? fields.OptionalInteger("max_tokens", 1, int.MaxValue);
        var maxTokens = limits.CapMaxTokens(askedMaxTokens);
        var logprobs = fields.OptionalBool("logprobs") ?? false;
        var topLogprobs = (int)(fields.OptionalInteger("top_logprobs", 0, 20) ?? 0);
        if (topLogprobs > 0 && !logprobs)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'top_logprobs' needs 'logprobs' set to true.", "top_logprobs"));
        }

        var settings = GenerationSettings.Read(fields, limits, askedMaxTokens, maxTokens, logprobs, topLogprobs);
        var format = ResponseFormat.Read(fields);
        if (format.IsJson && settings.IgnoreEos)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'ignore_eos' cannot be combined with a JSON 'response_format': the output must end where the JSON does.", "ignore_eos"));
        }

        if (format.IsJson && settings.Stop.Count > 0)
        {
            // A stop string met inside a value or in pretty-printing whitespace would cut the JSON short.
            throw new OpenAiRequestException(OpenAiError.Invalid("'stop' cannot be combined with a JSON 'response_format': the output ends where the JSON does.", "stop"));
        }

        var tools = ToolUse.Read(fields); // beside a JSON response_format, the answer is either tool calls or that JSON

        if (tools.Forced && (settings.Stop.Count > 0 || settings.IgnoreEos))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'stop' and 'ignore_eos' cannot be combined with a required tool call.", settings.Stop.Count > 0 ? "stop" : "ignore_eos"));
        }

        return new ChatCompletionRequest(settings, ReadMessages(fields, limits), format, tools, ReadReasoning(fields));
    }

    /// <summary>
    /// OpenAI's reasoning_effort, and vLLM's chat_template_kwargs limited to the thinking switches of reasoning models'
    /// templates (Qwen3's enable_thinking, DeepSeek V3.1's thinking), which clients of such models send.
    /// </summary>
    private static ReasoningRequest ReadReasoning(JsonFields fields)
    {
        var reasoning = ReasoningRequest.FromEffort(fields.OptionalString("reasoning_effort"), "reasoning_effort");
        if (fields.Element("chat_template_kwargs") is not { } kwargs || kwargs.ValueKind == JsonValueKind.Null)
        {
            return reasoning;
        }

        if (kwargs.ValueKind != JsonValueKind.Object)
        {
            throw JsonFields.TypeError("chat_template_kwargs", "an object");
        }

        bool? thinking = null;
        foreach (var property in kwargs.EnumerateObject())
        {
            var param = $"chat_template_kwargs.{property.Name}";
            if (property.Name is not ("enable_thinking" or "thinking"))
            {
                throw new OpenAiRequestException(OpenAiError.Unsupported(param, $"the template variable '{property.Name}' (only enable_thinking and thinking)"));
            }

            var value = property.Value.ValueKind is JsonValueKind.True or JsonValueKind.False ? property.Value.GetBoolean() : throw JsonFields.TypeError(param, "a boolean");
            thinking = thinking is { } earlier && earlier != value
                ? throw new OpenAiRequestException(OpenAiError.Invalid("'chat_template_kwargs' switches thinking both on and off.", param))
                : value;
        }

        return thinking is null ? reasoning : reasoning with { Thinking = thinking };
    }

    private static void RejectUnsupportedOptions(JsonFields fields)
    {
        if (fields.Element("logit_bias") is { } bias && (bias.ValueKind != JsonValueKind.Object || bias.EnumerateObject().Any()))
        {
            throw new OpenAiRequestException(OpenAiError.Unsupported("logit_bias", "logit bias"));
        }

        if (fields.Element("modalities") is { } modalities &&
            (modalities.ValueKind != JsonValueKind.Array || modalities.EnumerateArray().Any(m => m.ValueKind != JsonValueKind.String || m.GetString() != "text")))
        {
            throw new OpenAiRequestException(OpenAiError.Unsupported("modalities", "output other than text"));
        }

        _ = fields.OptionalBool("store");
    }

    private static List<ChatMessage> ReadMessages(JsonFields fields, ApiLimits limits)
    {
        if (fields.Element("messages") is not { } messages)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter"));
        }

        if (messages.ValueKind != JsonValueKind.Array)
        {
            throw JsonFields.TypeError("messages", "an array");
        }

        var count = messages.GetArrayLength();
        if (count == 0)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'messages' must hold at least one message.", "messages", "empty_array"));
        }

        if (count > limits.MaxMessages)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"'messages' holds {count} messages; the limit is {limits.MaxMessages}.", "messages"));
        }

        var result = new List<ChatMessage>(count);
        var index = 0;
        foreach (var message in messages.EnumerateArray())
        {
            result.Add(Message(message, $"messages[{index++}]"));
        }

        return result;
    }

    private static ChatMessage Message(JsonElement message, string param)
    {
        if (message.ValueKind != JsonValueKind.Object)
        {
            throw JsonFields.TypeError(param, "an object");
        }

        foreach (var property in message.EnumerateObject())
        {
            switch (property.Name)
            {
                case "role" or "content" or "name" or "tool_calls" or "tool_call_id" or "refusal" or "reasoning_content" or "reasoning":
                    break;
                // An answer echoed back whole (openai-python's message.model_dump()) carries these as null.
                case "function_call" or "audio" or "annotations" when property.Value.ValueKind == JsonValueKind.Null:
                case "annotations":
                    break;
                case "function_call":
                    throw new OpenAiRequestException(OpenAiError.Unsupported($"{param}.function_call", "the deprecated function calling (use tool_calls)"));
                case "audio":
                    throw new OpenAiRequestException(OpenAiError.Unsupported($"{param}.audio", "audio"));
                default:
                    throw new OpenAiRequestException(OpenAiError.Invalid($"Unrecognized message field: {param}.{property.Name}", $"{param}.{property.Name}", "unknown_parameter"));
            }
        }

        var role = message.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String
            ? r.GetString()!
            : throw new OpenAiRequestException(OpenAiError.Invalid($"Missing or invalid '{param}.role'.", $"{param}.role", "missing_required_parameter"));
        role = role switch
        {
            "system" or "user" or "assistant" => role,
            "developer" => "system",
            "tool" => role,
            "function" => throw new OpenAiRequestException(OpenAiError.Unsupported($"{param}.role", "the deprecated 'function' role (use 'tool')")),
            _ => throw new OpenAiRequestException(OpenAiError.Invalid($"Invalid value for '{param}.role': '{role}'. Supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'.", $"{param}.role")),
        };

        if (message.TryGetProperty("name", out var name) && name.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
        {
            throw JsonFields.TypeError($"{param}.name", "a string");
        }

        var calls = role == "assistant" ? ToolCalls(message, param) : null;
        string? callId = null;
        if (role == "tool")
        {
            callId = message.TryGetProperty("tool_call_id", out var id) && id.ValueKind == JsonValueKind.String
                ? id.GetString()
                : throw new OpenAiRequestException(OpenAiError.Invalid($"Missing required parameter: '{param}.tool_call_id'.", $"{param}.tool_call_id", "missing_required_parameter"));
        }
        else if (message.TryGetProperty("tool_call_id", out _))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"'{param}.tool_call_id' belongs to tool messages.", $"{param}.tool_call_id", "unknown_parameter"));
        }

        var content = calls is { Count: > 0 } && (!message.TryGetProperty("content", out var c) || c.ValueKind == JsonValueKind.Null) ? string.Empty : Content(message, param, role);
        return new ChatMessage(role, content, calls, callId, name.ValueKind == JsonValueKind.String ? name.GetString() : null) { Reasoning = EarlierThought(message, param, role) };
    }

    /// <summary>An earlier answer's thought: reasoning_content (DeepSeek's and this appliance's name) or reasoning (vLLM's newer one).</summary>
    private static string? EarlierThought(JsonElement message, string param, string role)
    {
        string? found = null;
        foreach (var name in (string[])["reasoning_content", "reasoning"])
        {
            if (!message.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                continue;
            }

            found = role != "assistant"
                ? throw new OpenAiRequestException(OpenAiError.Invalid($"'{param}.{name}' belongs to assistant messages.", $"{param}.{name}", "unknown_parameter"))
                : value.ValueKind == JsonValueKind.String ? found ?? value.GetString() : throw JsonFields.TypeError($"{param}.{name}", "a string");
        }

        return found;
    }

    /// <summary>An assistant message's earlier tool calls: id, function name and arguments (a JSON object as text).</summary>
    private static List<ToolCall>? ToolCalls(JsonElement message, string param)
    {
        if (!message.TryGetProperty("tool_calls", out var calls) || calls.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (calls.ValueKind != JsonValueKind.Array)
        {
            throw JsonFields.TypeError($"{param}.tool_calls", "an array");
        }

        var result = new List<ToolCall>();
        var index = 0;
        foreach (var call in calls.EnumerateArray())
        {
            var callParam = $"{param}.tool_calls[{index++}]";
            var id = call.ValueKind == JsonValueKind.Object && call.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString()! : null;
            if (call.ValueKind == JsonValueKind.Object && call.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "custom")
            {
                result.Add(CustomToolCall(call, id, callParam));
                continue;
            }

            var function = call.ValueKind == JsonValueKind.Object && call.TryGetProperty("function", out var f) && f.ValueKind == JsonValueKind.Object ? f : (JsonElement?)null;
            var name = function?.TryGetProperty("name", out var n) == true && n.ValueKind == JsonValueKind.String ? n.GetString()! : null;
            var arguments = function?.TryGetProperty("arguments", out var a) == true && a.ValueKind == JsonValueKind.String ? a.GetString()! : null;
            arguments = arguments is { Length: 0 } ? "{}" : arguments; // some clients send "" for a function without arguments
            if (id is null || name is null || arguments is null)
            {
                throw new OpenAiRequestException(OpenAiError.Invalid($"'{callParam}' needs an 'id', 'function.name' and 'function.arguments' (a string).", callParam, "missing_required_parameter"));
            }

            string? problem;
            try
            {
                using var parsed = JsonDocument.Parse(arguments);
                problem = JsonFields.Unreadable(parsed.RootElement, "arguments", duplicateKeys: false); // read when the history is rendered
            }
            catch (JsonException)
            {
                // A call cut short by max_tokens (finish_reason "length") comes back in the history as it was: it is
                // rendered as the text it is, as OpenAI takes any string here.
                problem = null;
            }

            if (problem is not null)
            {
                throw new OpenAiRequestException(OpenAiError.Invalid($"'{callParam}.function.arguments' cannot be read: {problem}", $"{callParam}.function.arguments"));
            }

            result.Add(new ToolCall(id, name, arguments));
        }

        return result;
    }

    /// <summary>An earlier call of a custom tool: <c>{"id", "type": "custom", "custom": {"name", "input"}}</c>, carried as a function's arguments.</summary>
    private static ToolCall CustomToolCall(JsonElement call, string? id, string callParam)
    {
        var custom = call.TryGetProperty("custom", out var c) && c.ValueKind == JsonValueKind.Object ? c : (JsonElement?)null;
        var name = custom?.TryGetProperty("name", out var n) == true && n.ValueKind == JsonValueKind.String ? n.GetString()! : null;
        var input = custom?.TryGetProperty("input", out var text) == true && text.ValueKind == JsonValueKind.String ? text.GetString()! : null;
        return id is null || name is null || input is null
            ? throw new OpenAiRequestException(OpenAiError.Invalid($"'{callParam}' needs an 'id', 'custom.name' and 'custom.input' (a string).", callParam, "missing_required_parameter"))
            : new ToolCall(id, name, FreeformInput.Arguments(input));
    }

    private static string Content(JsonElement message, string param, string role)
    {
        if (!message.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
        {
            return role == "assistant"
                ? string.Empty
                : throw new OpenAiRequestException(OpenAiError.Invalid($"Missing required parameter: '{param}.content'.", $"{param}.content", "missing_required_parameter"));
        }

        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!;
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            throw JsonFields.TypeError($"{param}.content", "a string or an array of content parts");
        }

        var text = new StringBuilder();
        var part = 0;
        foreach (var item in content.EnumerateArray())
        {
            var partParam = $"{param}.content[{part++}]";
            var type = item.ValueKind == JsonValueKind.Object && item.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
                ? t.GetString()
                : throw new OpenAiRequestException(OpenAiError.Invalid($"Missing or invalid '{partParam}.type'.", $"{partParam}.type"));
            if (type != "text")
            {
                throw new OpenAiRequestException(OpenAiError.Unsupported($"{partParam}.type", $"content of type '{type}' (only text)"));
            }

            // Parts on lines of their own, as vLLM joins them: ["Translate:", "Good morning"] must not read "Translate:Good morning".
            text.Append(text.Length > 0 ? "\n" : string.Empty).Append(item.TryGetProperty("text", out var value) && value.ValueKind == JsonValueKind.String
                ? value.GetString()
                : throw new OpenAiRequestException(OpenAiError.Invalid($"Missing or invalid '{partParam}.text'.", $"{partParam}.text")));
        }

        return text.ToString();
    }
}
