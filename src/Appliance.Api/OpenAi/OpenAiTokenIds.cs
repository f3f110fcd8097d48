using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace Appliance.Api.OpenAi;

/// <summary>
/// Token ids in OpenAI's cl100k_base, read back to text: what LangChain's OpenAIEmbeddings sends as embedding input
/// (it tokenizes with tiktoken to cut long texts), whatever the model's own tokenizer is.
/// </summary>
internal static class OpenAiTokenIds
{
    // cl100k_base's ordinary tokens; its special tokens (<|endoftext|> and the like) are above and are no text.
    private const int OrdinaryTokens = 100256;
    private static readonly Lazy<Tokenizer> Cl100k = new(() => TiktokenTokenizer.CreateForEncoding("cl100k_base"));

    /// <summary>The text of one input's ids (a JSON array of integers), or a 400 naming <paramref name="param"/>.</summary>
    public static string Text(JsonElement ids, string param)
    {
        var values = new List<int>();
        foreach (var id in ids.EnumerateArray())
        {
            if (id.ValueKind != JsonValueKind.Number || !id.TryGetInt32(out var value) || value is < 0 or >= OrdinaryTokens)
            {
                throw new OpenAiRequestException(OpenAiError.Invalid(
                    $"'{param}' holds {id.GetRawText()}, which is not a token id of OpenAI's cl100k_base (0 to {OrdinaryTokens - 1}); send text, or cl100k_base's ids.", param));
            }

            values.Add(value);
        }

        return values.Count == 0
            ? throw new OpenAiRequestException(OpenAiError.Invalid($"'{param}' must not be empty.", param))
            : Cl100k.Value.Decode(values) ?? string.Empty;
    }
}
