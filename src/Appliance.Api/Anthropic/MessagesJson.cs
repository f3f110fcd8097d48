using System.Text;
using System.Text.Json;
using Appliance.Prompting;

namespace Appliance.Api.Anthropic;

/// <summary>Anthropic's message object and its streaming events, written as the Messages API writes them.</summary>
internal static class MessagesJson
{
    public static byte[] Message(string id, string model, string? thought, string? text, IReadOnlyList<ToolCall> calls, string stopReason, string? stopSequence, int inputTokens, int outputTokens, int cachedTokens) =>
        Write(json =>
        {
            StartMessage(json, id, model);
            json.WriteStartArray("content");
            if (thought is not null)
            {
                json.WriteStartObject();
                json.WriteString("type", "thinking");
                json.WriteString("thinking", thought);
                json.WriteString("signature", string.Empty); // nothing to verify: the thought never leaves the appliance's keeping
                json.WriteEndObject();
            }

            if (!string.IsNullOrEmpty(text))
            {
                json.WriteStartObject();
                json.WriteString("type", "text");
                json.WriteString("text", text);
                json.WriteEndObject();
            }

            foreach (var call in calls)
            {
                json.WriteStartObject();
                json.WriteString("type", "tool_use");
                json.WriteString("id", call.Id);
                json.WriteString("name", call.Name);
                json.WritePropertyName("input");
                using (var input = JsonDocument.Parse(call.Arguments))
                {
                    input.RootElement.WriteTo(json);
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteString("stop_reason", stopReason);
            StopSequence(json, stopSequence);
            Usage(json, inputTokens, outputTokens, cachedTokens);
            json.WriteEndObject();
        });

    public static byte[] MessageStart(string id, string model, int inputTokens) =>
        Write(json =>
        {
            json.WriteStartObject();
            json.WriteString("type", "message_start");
            json.WritePropertyName("message");
            StartMessage(json, id, model);
            json.WriteStartArray("content");
            json.WriteEndArray();
            json.WriteNull("stop_reason");
            json.WriteNull("stop_sequence");
            Usage(json, inputTokens, 0, 0); // before admission, nothing is known of the cache yet
            json.WriteEndObject();
            json.WriteEndObject();
        });

    public static byte[] TextBlockStart(int index) => Event("content_block_start", index, json =>
    {
        json.WriteStartObject("content_block");
        json.WriteString("type", "text");
        json.WriteString("text", string.Empty);
        json.WriteEndObject();
    });

    public static byte[] ThinkingBlockStart(int index) => Event("content_block_start", index, json =>
    {
        json.WriteStartObject("content_block");
        json.WriteString("type", "thinking");
        json.WriteString("thinking", string.Empty);
        json.WriteString("signature", string.Empty);
        json.WriteEndObject();
    });

    public static byte[] ThinkingDelta(int index, string thinking) => Event("content_block_delta", index, json =>
    {
        json.WriteStartObject("delta");
        json.WriteString("type", "thinking_delta");
        json.WriteString("thinking", thinking);
        json.WriteEndObject();
    });

    public static byte[] ToolUseBlockStart(int index, ToolCall call) => Event("content_block_start", index, json =>
    {
        json.WriteStartObject("content_block");
        json.WriteString("type", "tool_use");
        json.WriteString("id", call.Id);
        json.WriteString("name", call.Name);
        json.WriteStartObject("input");
        json.WriteEndObject();
        json.WriteEndObject();
    });

    public static byte[] TextDelta(int index, string text) => Event("content_block_delta", index, json =>
    {
        json.WriteStartObject("delta");
        json.WriteString("type", "text_delta");
        json.WriteString("text", text);
        json.WriteEndObject();
    });

    public static byte[] InputJsonDelta(int index, string partialJson) => Event("content_block_delta", index, json =>
    {
        json.WriteStartObject("delta");
        json.WriteString("type", "input_json_delta");
        json.WriteString("partial_json", partialJson);
        json.WriteEndObject();
    });

    public static byte[] BlockStop(int index) => Event("content_block_stop", index, _ => { });

    /// <summary>The end: stop reason and the cumulative usage, with the input split into computed and cache-read tokens.</summary>
    public static byte[] MessageDelta(string stopReason, string? stopSequence, int inputTokens, int outputTokens, int cachedTokens) =>
        Write(json =>
        {
            json.WriteStartObject();
            json.WriteString("type", "message_delta");
            json.WriteStartObject("delta");
            json.WriteString("stop_reason", stopReason);
            StopSequence(json, stopSequence);
            json.WriteEndObject();
            Usage(json, inputTokens, outputTokens, cachedTokens);
            json.WriteEndObject();
        });

    public static byte[] MessageStop() => Write(json =>
    {
        json.WriteStartObject();
        json.WriteString("type", "message_stop");
        json.WriteEndObject();
    });

    public static byte[] Error(int status, string message) => Write(json =>
    {
        json.WriteStartObject();
        json.WriteString("type", "error");
        json.WriteStartObject("error");
        json.WriteString("type", AnthropicErrors.TypeOf(status));
        json.WriteString("message", message);
        json.WriteEndObject();
        json.WriteEndObject();
    });

    public static byte[] InputTokens(int count) => Write(json =>
    {
        json.WriteStartObject();
        json.WriteNumber("input_tokens", count);
        json.WriteEndObject();
    });

    private static void StopSequence(Utf8JsonWriter json, string? stopSequence)
    {
        if (stopSequence is null)
        {
            json.WriteNull("stop_sequence");
        }
        else
        {
            json.WriteString("stop_sequence", stopSequence);
        }
    }

    private static void StartMessage(Utf8JsonWriter json, string id, string model)
    {
        json.WriteStartObject();
        json.WriteString("id", id);
        json.WriteString("type", "message");
        json.WriteString("role", "assistant");
        json.WriteString("model", model);
    }

    /// <summary>Anthropic counts cache reads apart: input_tokens are the ones computed, the total is their sum.</summary>
    private static void Usage(Utf8JsonWriter json, int inputTokens, int outputTokens, int cachedTokens)
    {
        json.WriteStartObject("usage");
        json.WriteNumber("input_tokens", inputTokens - cachedTokens);
        json.WriteNumber("cache_creation_input_tokens", 0); // the prefix cache keeps prompts on its own, at no charge
        json.WriteNumber("cache_read_input_tokens", cachedTokens);
        json.WriteNumber("output_tokens", outputTokens);
        json.WriteEndObject();
    }

    private static byte[] Event(string type, int index, Action<Utf8JsonWriter> body) => Write(json =>
    {
        json.WriteStartObject();
        json.WriteString("type", type);
        json.WriteNumber("index", index);
        body(json);
        json.WriteEndObject();
    });

    private static byte[] Write(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            write(json);
        }

        return buffer.ToArray();
    }

    /// <summary>The SSE frame: an event line naming the type, then the data line.</summary>
    public static byte[] Frame(string type, byte[] data) => [.. Encoding.UTF8.GetBytes($"event: {type}\ndata: "), .. data, .. "\n\n"u8];
}
