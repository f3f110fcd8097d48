using System.Text;
using System.Text.Json;
using Appliance.Engine;
using Appliance.Engine.Requests;

namespace Appliance.Api.OpenAi;

/// <summary>
/// Writes OpenAI's response objects exactly: chat.completion, chat.completion.chunk and text_completion, with usage
/// and logprobs. Written by hand with Utf8JsonWriter so that nulls appear where OpenAI puts them and nowhere else.
/// </summary>
internal static class OpenAiJson
{
    /// <summary>A whole answer; <paramref name="tools"/> tells custom tools' calls (text input) from functions' (JSON arguments).</summary>
    public static byte[] Completion(ResponseHeader header, IReadOnlyList<ChoiceResult> choices, GenerationUsage usage, ITokenizer tokenizer, ToolUse? tools = null) =>
        Write(json =>
        {
            Start(json, header, streaming: false);
            json.WriteStartArray("choices");
            foreach (var choice in choices)
            {
                json.WriteStartObject();
                json.WriteNumber("index", choice.Index);
                if (header.Kind == ResponseKind.Chat)
                {
                    json.WriteStartObject("message");
                    json.WriteString("role", "assistant");
                    json.WriteString("content", choice.Text);
                    if (choice.Reasoning is not null)
                    {
                        json.WriteString("reasoning_content", choice.Reasoning);
                    }

                    json.WriteNull("refusal");
                    if (choice.CalledTools)
                    {
                        json.WriteStartArray("tool_calls");
                        foreach (var call in choice.ToolCalls!)
                        {
                            var custom = tools?.IsCustom(call.Name) == true;
                            json.WriteStartObject();
                            json.WriteString("id", call.Id);
                            json.WriteString("type", custom ? "custom" : "function");
                            json.WriteStartObject(custom ? "custom" : "function");
                            json.WriteString("name", call.Name);
                            json.WriteString(custom ? "input" : "arguments", custom ? FreeformInput.Of(call.Arguments) : call.Arguments);
                            json.WriteEndObject();
                            json.WriteEndObject();
                        }

                        json.WriteEndArray();
                    }

                    json.WriteEndObject();
                }
                else
                {
                    json.WriteString("text", choice.Text ?? string.Empty);
                }

                Logprobs(json, header.Kind, choice.Logprobs, tokenizer);
                json.WriteString("finish_reason", choice.CalledTools && choice.Finish != FinishReason.ContentFilter ? "tool_calls" : FinishReasonName(choice.Finish));
                json.WriteEndObject();
            }

            json.WriteEndArray();
            Usage(json, usage);
            json.WriteEndObject();
        });

    /// <summary>
    /// A streamed piece of one tool call: the first carries its id, type and name; later ones more of its arguments
    /// (of a custom tool's call, <paramref name="custom"/>: more of its input, under "custom").
    /// </summary>
    public static byte[] ToolCallChunk(ResponseHeader header, int index, int callIndex, Appliance.Prompting.ToolCall? opening, string arguments, bool includeUsage, bool custom = false) =>
        Write(json =>
        {
            Start(json, header, streaming: true);
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", index);
            json.WriteStartObject("delta");
            json.WriteStartArray("tool_calls");
            json.WriteStartObject();
            json.WriteNumber("index", callIndex);
            if (opening is not null)
            {
                json.WriteString("id", opening.Id);
                json.WriteString("type", custom ? "custom" : "function");
            }

            json.WriteStartObject(custom ? "custom" : "function");
            if (opening is not null)
            {
                json.WriteString("name", opening.Name);
            }

            json.WriteString(custom ? "input" : "arguments", arguments);
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteNull("logprobs");
            json.WriteNull("finish_reason");
            json.WriteEndObject();
            json.WriteEndArray();
            if (includeUsage)
            {
                json.WriteNull("usage");
            }

            json.WriteEndObject();
        });

    /// <summary>A streamed chunk of one choice. <paramref name="role"/> marks a chat stream's first chunk.</summary>
    /// <param name="textOffset">Where a legacy choice's first token here starts in its text (the tokens streamed before, in characters).</param>
    public static byte[] Chunk(ResponseHeader header, int index, string? text, bool role, IReadOnlyList<TokenLogprob>? logprobs, FinishReason? finish, bool includeUsage, ITokenizer tokenizer, bool calledTools = false, string? reasoning = null, int textOffset = 0) =>
        Write(json =>
        {
            Start(json, header, streaming: true);
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", index);
            if (header.Kind == ResponseKind.Chat)
            {
                json.WriteStartObject("delta");
                if (role)
                {
                    json.WriteString("role", "assistant");
                }

                if (text is not null)
                {
                    json.WriteString("content", text);
                }

                if (reasoning is not null)
                {
                    json.WriteString("reasoning_content", reasoning);
                }

                json.WriteEndObject();
            }
            else
            {
                json.WriteString("text", text ?? string.Empty);
            }

            Logprobs(json, header.Kind, logprobs, tokenizer, textOffset);
            if (finish is { } reason)
            {
                json.WriteString("finish_reason", calledTools && reason != FinishReason.ContentFilter ? "tool_calls" : FinishReasonName(reason));
            }
            else
            {
                json.WriteNull("finish_reason");
            }

            json.WriteEndObject();
            json.WriteEndArray();
            if (includeUsage)
            {
                json.WriteNull("usage");
            }

            json.WriteEndObject();
        });

    /// <summary>The extra chunk before [DONE] when stream_options.include_usage is set: empty choices, the whole usage.</summary>
    public static byte[] UsageChunk(ResponseHeader header, GenerationUsage usage) =>
        Write(json =>
        {
            Start(json, header, streaming: true);
            json.WriteStartArray("choices");
            json.WriteEndArray();
            Usage(json, usage);
            json.WriteEndObject();
        });

    public static byte[] StreamError(string message, string type, string code) =>
        Write(json =>
        {
            json.WriteStartObject();
            json.WriteStartObject("error");
            json.WriteString("message", message);
            json.WriteString("type", type);
            json.WriteNull("param");
            json.WriteString("code", code);
            json.WriteEndObject();
            json.WriteEndObject();
        });

    public static string FinishReasonName(FinishReason reason) => reason switch
    {
        FinishReason.Length => "length",
        FinishReason.ContentFilter => "content_filter", // OpenAI's name for an answer its filters cut
        _ => "stop",
    };

    private static void Start(Utf8JsonWriter json, ResponseHeader header, bool streaming)
    {
        json.WriteStartObject();
        json.WriteString("id", header.Id);
        json.WriteString("object", header.Kind == ResponseKind.Chat ? (streaming ? "chat.completion.chunk" : "chat.completion") : "text_completion");
        json.WriteNumber("created", header.Created);
        json.WriteString("model", header.Model);
        json.WriteString("system_fingerprint", header.Fingerprint);
    }

    private static void Usage(Utf8JsonWriter json, GenerationUsage usage)
    {
        json.WriteStartObject("usage");
        json.WriteNumber("prompt_tokens", usage.PromptTokens);
        json.WriteNumber("completion_tokens", usage.CompletionTokens);
        json.WriteNumber("total_tokens", usage.TotalTokens);
        json.WriteStartObject("prompt_tokens_details");
        json.WriteNumber("cached_tokens", usage.CachedPromptTokens);
        json.WriteEndObject();
        json.WriteStartObject("completion_tokens_details");
        json.WriteNumber("reasoning_tokens", usage.ReasoningTokens);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>Characters the tokens take as the legacy logprobs' "tokens" show them (what text_offset counts).</summary>
    public static int TokensLength(ITokenizer tokenizer, IReadOnlyList<TokenLogprob>? logprobs) =>
        logprobs?.Sum(l => Token(tokenizer, l.TokenId).Token.Length) ?? 0;

    /// <summary>
    /// A choice's logprobs. In the legacy form an echoed prompt's first token has no score (NaN here): null in
    /// token_logprobs and top_logprobs, as OpenAI writes it. text_offset counts each token's start in characters of
    /// the tokens before it as "tokens" shows them (as vLLM does), from <paramref name="textOffset"/>.
    /// </summary>
    private static void Logprobs(Utf8JsonWriter json, ResponseKind kind, IReadOnlyList<TokenLogprob>? logprobs, ITokenizer tokenizer, int textOffset = 0)
    {
        if (logprobs is null)
        {
            json.WriteNull("logprobs");
            return;
        }

        json.WriteStartObject("logprobs");
        if (kind == ResponseKind.Chat)
        {
            json.WriteStartArray("content");
            foreach (var logprob in logprobs)
            {
                json.WriteStartObject();
                TokenFields(json, logprob.TokenId, logprob.Logprob, tokenizer);
                json.WriteStartArray("top_logprobs");
                foreach (var alternative in logprob.TopAlternatives)
                {
                    json.WriteStartObject();
                    TokenFields(json, alternative.TokenId, alternative.Logprob, tokenizer);
                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteNull("refusal");
        }
        else
        {
            var tokens = logprobs.Select(l => Token(tokenizer, l.TokenId).Token).ToList();
            json.WriteStartArray("tokens");
            tokens.ForEach(json.WriteStringValue);
            json.WriteEndArray();
            json.WriteStartArray("token_logprobs");
            foreach (var logprob in logprobs)
            {
                if (float.IsNaN(logprob.Logprob))
                {
                    json.WriteNullValue();
                }
                else
                {
                    json.WriteNumberValue(Finite(logprob.Logprob));
                }
            }

            json.WriteEndArray();
            json.WriteStartArray("top_logprobs");
            foreach (var logprob in logprobs)
            {
                if (float.IsNaN(logprob.Logprob))
                {
                    json.WriteNullValue();
                    continue;
                }

                // Keyed by the token's text: two alternatives that read alike keep the likelier (a JSON object has one
                // of each key), and the sampled token is always there, as OpenAI gives it (up to logprobs + 1 entries).
                json.WriteStartObject();
                var written = new HashSet<string>(StringComparer.Ordinal);
                foreach (var (tokenId, value) in logprob.TopAlternatives.Select(a => (a.TokenId, a.Logprob)).Append((logprob.TokenId, logprob.Logprob)))
                {
                    if (written.Add(Token(tokenizer, tokenId).Token))
                    {
                        json.WriteNumber(Token(tokenizer, tokenId).Token, Finite(value));
                    }
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartArray("text_offset");
            var offset = textOffset;
            foreach (var token in tokens)
            {
                json.WriteNumberValue(offset);
                offset += token.Length;
            }

            json.WriteEndArray();
        }

        json.WriteEndObject();
    }

    /// <summary>
    /// A token the model rules out (a logit of minus infinity: padding ids, masked tokens) as vLLM writes it, -9999:
    /// JSON has no infinity, and a scored prompt may hold such a token.
    /// </summary>
    private static float Finite(float logprob) => float.IsNegativeInfinity(logprob) ? -9999f : logprob;

    private static void TokenFields(Utf8JsonWriter json, int tokenId, float logprob, ITokenizer tokenizer)
    {
        var (token, bytes) = Token(tokenizer, tokenId);
        json.WriteString("token", token);
        json.WriteNumber("logprob", Finite(logprob));
        json.WriteStartArray("bytes");
        foreach (var b in bytes)
        {
            json.WriteNumberValue(b);
        }

        json.WriteEndArray();
    }

    /// <summary>
    /// A token as logprobs show it, and its bytes. One that holds part of a character (byte-level tokenizers split
    /// emoji and CJK) decodes to U+FFFD alone: its own bytes are given instead, so that clients can put the text back
    /// together from the bytes, and its text is written as OpenAI writes such tokens ("bytes:\xe2\x80").
    /// </summary>
    internal static (string Token, byte[] Bytes) Token(ITokenizer tokenizer, int tokenId)
    {
        var text = tokenizer.Decode([tokenId]);
        if (text.Contains('\uFFFD', StringComparison.Ordinal) && tokenizer.TokenBytes(tokenId) is { Length: > 0 } bytes)
        {
            return ("bytes:" + string.Concat(bytes.Select(b => $"\\x{b:x2}")), bytes);
        }

        return (text, Encoding.UTF8.GetBytes(text));
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
}

/// <summary>One finished choice of a non-streamed response.</summary>
/// <summary>A finished choice: its text (null beside tool calls when there is none) and the tool calls it made.</summary>
internal sealed record ChoiceResult(int Index, string? Text, IReadOnlyList<TokenLogprob>? Logprobs, FinishReason Finish, IReadOnlyList<Appliance.Prompting.ToolCall>? ToolCalls = null)
{
    public bool CalledTools => ToolCalls is { Count: > 0 };

    /// <summary>A reasoning model's thought before this answer (reasoning_content), or null.</summary>
    public string? Reasoning { get; init; }
}
