using System.Text.Json;

namespace Appliance.Api.OpenAi;

/// <summary>One prompt of a legacy completion request: text, or token ids given directly.</summary>
internal sealed record CompletionPrompt(string? Text, IReadOnlyList<int>? TokenIds);

/// <summary>A validated POST /v1/completions body.</summary>
/// <param name="Echo">Each choice's text begins with its prompt, and its logprobs with the prompt's tokens (scored).</param>
internal sealed record CompletionRequest(GenerationSettings Settings, IReadOnlyList<CompletionPrompt> Prompts, bool Echo = false)
{
    private const int MaxPrompts = 64;

    private static readonly HashSet<string> Known = [.. GenerationSettings.CommonFields, "prompt", "logprobs", "echo", "suffix", "best_of", "logit_bias"];

    public static CompletionRequest Read(JsonFields fields, ApiLimits limits)
    {
        fields.RejectUnknown(Known);
        var echo = fields.OptionalBool("echo") ?? false;
        if (fields.OptionalString("suffix") is { Length: > 0 })
        {
            throw new OpenAiRequestException(OpenAiError.Unsupported("suffix", "a suffix (insertion)"));
        }

        if (fields.OptionalInteger("best_of", 1, 20) > 1)
        {
            throw new OpenAiRequestException(OpenAiError.Unsupported("best_of", "best_of"));
        }

        if (fields.Element("logit_bias") is { } bias && (bias.ValueKind != JsonValueKind.Object || bias.EnumerateObject().Any()))
        {
            throw new OpenAiRequestException(OpenAiError.Unsupported("logit_bias", "logit bias"));
        }

        // None named: the model's DefaultMaxTokens, else 16 as OpenAI's legacy completions (CompletionsApi).
        // max_tokens 0 with echo only scores the prompt, as evaluation harnesses ask (OpenAI accepts it so too).
        var askedMaxTokens = fields.OptionalInteger("max_tokens", 0, int.MaxValue);
        if (askedMaxTokens == 0 && !echo)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'max_tokens' must be at least 1 unless 'echo' is true (then 0 only scores the prompt).", "max_tokens"));
        }


        var maxTokens = limits.CapMaxTokens(askedMaxTokens);
        var logprobs = fields.OptionalInteger("logprobs", 0, 5);
        var settings = GenerationSettings.Read(fields, limits, askedMaxTokens, maxTokens, logprobs is not null, (int)(logprobs ?? 0));
        return new CompletionRequest(settings, ReadPrompts(fields), echo);
    }

    private static List<CompletionPrompt> ReadPrompts(JsonFields fields)
    {
        var prompt = fields.Element("prompt")
            ?? throw new OpenAiRequestException(OpenAiError.Invalid("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"));
        switch (prompt.ValueKind)
        {
            case JsonValueKind.String:
                return [new CompletionPrompt(prompt.GetString(), null)];
            case JsonValueKind.Array when prompt.GetArrayLength() == 0:
                throw new OpenAiRequestException(OpenAiError.Invalid("'prompt' must not be empty.", "prompt", "empty_array"));
            case JsonValueKind.Array when prompt.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number):
                return [new CompletionPrompt(null, TokenIds(prompt, "prompt"))];
            case JsonValueKind.Array when prompt.GetArrayLength() > MaxPrompts:
                throw new OpenAiRequestException(OpenAiError.Invalid($"'prompt' holds at most {MaxPrompts} prompts.", "prompt"));
            case JsonValueKind.Array:
                var prompts = new List<CompletionPrompt>();
                var index = 0;
                foreach (var item in prompt.EnumerateArray())
                {
                    var param = $"prompt[{index++}]";
                    prompts.Add(item.ValueKind switch
                    {
                        JsonValueKind.String => new CompletionPrompt(item.GetString(), null),
                        JsonValueKind.Array when item.GetArrayLength() > 0 => new CompletionPrompt(null, TokenIds(item, param)),
                        _ => throw JsonFields.TypeError(param, "a string or a non-empty array of token ids"),
                    });
                }

                return prompts;
            default:
                throw JsonFields.TypeError("prompt", "a string, an array of strings, or token ids");
        }
    }

    private static int[] TokenIds(JsonElement array, string param) =>
        [.. array.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var id) && id >= 0
            ? id
            : throw JsonFields.TypeError(param, "non-negative integer token ids"))];
}
