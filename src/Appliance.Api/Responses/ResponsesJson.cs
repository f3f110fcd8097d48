using System.Text;
using System.Text.Json;
using Appliance.Prompting;
using Appliance.Api.OpenAi;

namespace Appliance.Api.Responses;

/// <summary>The Responses API's response object, output items and streaming events.</summary>
internal sealed class ResponsesJson(string id, string model, long createdAt, ResponsesRequest request)
{
    private int _sequence;

    /// <summary>Input tokens the prefix cache served, once the engine said (input_tokens_details.cached_tokens).</summary>
    public int CachedInputTokens { get; set; }

    /// <summary>Output tokens a reasoning model spent thinking (output_tokens_details.reasoning_tokens).</summary>
    public int ReasoningTokens { get; set; }

    /// <summary>The response object; <paramref name="output"/> null while in progress.</summary>
    public byte[] Response(string status, IReadOnlyList<OutputItem>? output, int inputTokens, int outputTokens, string? incompleteReason) =>
        Write(json => WriteResponse(json, status, output, inputTokens, outputTokens, incompleteReason));

    public byte[] Event(string type, Action<Utf8JsonWriter> fields) => Write(json =>
    {
        json.WriteStartObject();
        json.WriteString("type", type);
        json.WriteNumber("sequence_number", _sequence++);
        fields(json);
        json.WriteEndObject();
    });

    public byte[] ResponseEvent(string type, string status, IReadOnlyList<OutputItem>? output, int inputTokens, int outputTokens, string? incompleteReason, (string Code, string Message)? error = null) =>
        Event(type, json =>
        {
            json.WritePropertyName("response");
            WriteResponse(json, status, output, inputTokens, outputTokens, incompleteReason, error);
        });

    public static void WriteItem(Utf8JsonWriter json, OutputItem item, bool done)
    {
        json.WriteStartObject();
        if (item.Thought)
        {
            // A reasoning model's thought, as OpenAI returns open-weight models' reasoning: raw text, no summary.
            json.WriteString("type", "reasoning");
            json.WriteString("id", item.Id);
            json.WriteStartArray("summary");
            json.WriteEndArray();
            json.WriteStartArray("content");
            if (done)
            {
                WriteReasoningPart(json, item.Text ?? string.Empty);
            }

            json.WriteEndArray();
        }
        else if (item is { Call: { } custom, Freeform: true })
        {
            json.WriteString("type", "custom_tool_call");
            json.WriteString("id", item.Id);
            json.WriteString("call_id", custom.Id);
            json.WriteString("name", custom.Name);
            json.WriteString("input", done ? FreeformInput.Of(custom.Arguments) : string.Empty);
            json.WriteString("status", !done ? "in_progress" : item.Cut ? "incomplete" : "completed");
        }
        else if (item.Call is { } call)
        {
            json.WriteString("type", "function_call");
            json.WriteString("id", item.Id);
            json.WriteString("call_id", call.Id);
            json.WriteString("name", call.Name);
            json.WriteString("arguments", done ? call.Arguments : string.Empty);
            json.WriteString("status", !done ? "in_progress" : item.Cut ? "incomplete" : "completed");
        }
        else
        {
            json.WriteString("type", "message");
            json.WriteString("id", item.Id);
            json.WriteString("status", done ? "completed" : "in_progress");
            json.WriteString("role", "assistant");
            json.WriteStartArray("content");
            if (done)
            {
                WriteTextPart(json, item.Text ?? string.Empty);
            }

            json.WriteEndArray();
        }

        json.WriteEndObject();
    }

    public static void WriteReasoningPart(Utf8JsonWriter json, string text)
    {
        json.WriteStartObject();
        json.WriteString("type", "reasoning_text");
        json.WriteString("text", text);
        json.WriteEndObject();
    }

    public static void WriteTextPart(Utf8JsonWriter json, string text)
    {
        json.WriteStartObject();
        json.WriteString("type", "output_text");
        json.WriteString("text", text);
        json.WriteStartArray("annotations");
        json.WriteEndArray();
        json.WriteEndObject();
    }

    private void WriteResponse(Utf8JsonWriter json, string status, IReadOnlyList<OutputItem>? output, int inputTokens, int outputTokens, string? incompleteReason, (string Code, string Message)? error = null)
    {
        json.WriteStartObject();
        json.WriteString("id", id);
        json.WriteString("object", "response");
        json.WriteNumber("created_at", createdAt);
        json.WriteString("status", status);
        json.WriteString("model", model);
        if (error is { } failure)
        {
            json.WriteStartObject("error");
            json.WriteString("code", failure.Code);
            json.WriteString("message", failure.Message);
            json.WriteEndObject();
        }
        else
        {
            json.WriteNull("error");
        }

        if (incompleteReason is null)
        {
            json.WriteNull("incomplete_details");
        }
        else
        {
            json.WriteStartObject("incomplete_details");
            json.WriteString("reason", incompleteReason);
            json.WriteEndObject();
        }

        if (request.Instructions is null)
        {
            json.WriteNull("instructions");
        }
        else
        {
            json.WriteString("instructions", request.Instructions);
        }

        json.WriteStartArray("output");
        foreach (var item in output ?? [])
        {
            WriteItem(json, item, done: true);
        }

        json.WriteEndArray();
        json.WriteBoolean("parallel_tool_calls", request.Tools.Parallel);
        if (request.Tools.Function is { } named)
        {
            json.WriteStartObject("tool_choice");
            json.WriteString("type", request.Tools.Tools.Any(tool => tool.Name == named && tool.Freeform) ? "custom" : "function");
            json.WriteString("name", named);
            json.WriteEndObject();
        }
        else
        {
            json.WriteString("tool_choice", request.Tools.Tools.Count == 0 ? "auto" : request.Tools.Choice);
        }
        json.WriteStartArray("tools");
        foreach (var tool in request.Tools.Tools)
        {
            json.WriteStartObject();
            if (tool.Freeform)
            {
                json.WriteString("type", "custom");
                json.WriteString("name", tool.Name);
                json.WriteString("description", tool.Description);
                json.WriteStartObject("format");
                if (tool.InputPattern is { } pattern)
                {
                    json.WriteString("type", "grammar");
                    json.WriteString("syntax", "regex");
                    json.WriteString("definition", pattern);
                }
                else if (tool.InputGrammar is { } grammar)
                {
                    json.WriteString("type", "grammar");
                    json.WriteString("syntax", "lark");
                    json.WriteString("definition", grammar);
                }
                else
                {
                    json.WriteString("type", "text");
                }

                json.WriteEndObject();
                json.WriteEndObject();
                continue;
            }

            json.WriteString("type", "function");
            json.WriteString("name", tool.Name);
            json.WriteString("description", tool.Description);
            json.WritePropertyName("parameters");
            using (var parameters = JsonDocument.Parse(tool.Parameters))
            {
                parameters.RootElement.WriteTo(json);
            }

            json.WriteBoolean("strict", tool.Strict);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteBoolean("store", false);
        json.WriteStartObject("text");
        json.WriteStartObject("format");
        json.WriteString("type", request.Format.Type);
        if (request.Format.Schema is { } schema)
        {
            json.WriteString("name", request.Format.Name);
            json.WritePropertyName("schema");
            schema.WriteTo(json);
            json.WriteBoolean("strict", request.Format.Strict);
        }

        json.WriteEndObject();
        json.WriteEndObject();
        if (request.Settings.MaxTokens is { } max)
        {
            json.WriteNumber("max_output_tokens", max);
        }
        else
        {
            json.WriteNull("max_output_tokens");
        }

        json.WriteStartObject("metadata");
        json.WriteEndObject();
        if (output is not null)
        {
            json.WriteStartObject("usage");
            json.WriteNumber("input_tokens", inputTokens);
            json.WriteStartObject("input_tokens_details");
            json.WriteNumber("cached_tokens", CachedInputTokens);
            json.WriteEndObject();
            json.WriteNumber("output_tokens", outputTokens);
            json.WriteStartObject("output_tokens_details");
            json.WriteNumber("reasoning_tokens", ReasoningTokens);
            json.WriteEndObject();
            json.WriteNumber("total_tokens", inputTokens + outputTokens);
            json.WriteEndObject();
        }
        else
        {
            json.WriteNull("usage");
        }

        json.WriteEndObject();
    }

    private static byte[] Write(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            write(json);
        }

        return buffer.ToArray();
    }

    public static byte[] Frame(string type, byte[] data) => [.. Encoding.UTF8.GetBytes($"event: {type}\ndata: "), .. data, .. "\n\n"u8];
}

/// <summary>
/// One output item: a message with its text, or a function call (Cut: one max_output_tokens ended early); Freeform: the
/// call is a custom tool's, written as a custom_tool_call with its text input; Thought: a reasoning item, its text the thought.
/// </summary>
internal sealed record OutputItem(string Id, string? Text, ToolCall? Call, bool Cut = false, bool Freeform = false, bool Thought = false);
