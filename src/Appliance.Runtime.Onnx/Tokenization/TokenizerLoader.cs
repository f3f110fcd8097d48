using System.Text.Json;
using Appliance.Engine;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Runtime.Onnx.Tokenization;

/// <summary>
/// Chooses the tokenizer a model folder carries: tokenizer.json with tokenizer_config.json, a SentencePiece
/// tokenizer.model, or a tiktoken rank file (*.tiktoken, or a tokenizer.model in that text format); a folder with none
/// of them is refused.
/// </summary>
public static class TokenizerLoader
{
    public const string ConfigFileName = "tokenizer_config.json";
    public const string JsonFileName = "tokenizer.json";

    public static ITokenizer Load(string folder)
    {
        var config = ReadConfig(folder);
        if (File.Exists(Path.Combine(folder, JsonFileName)))
        {
            // The folder's tokenizer.json decides. GPT-2's own vocabulary runs on the tiktoken implementation, which is
            // faster than the generic BPE, but only when the file really is GPT-2's (not merely declared GPT2Tokenizer).
            var path = Path.Combine(folder, JsonFileName);
            // No fallback to a tokenizer.model beside it: transformers uses tokenizer.json whenever there is one, and the
            // model file lacks its post-processor and added tokens' settings.
            return Gpt2Tokenizer.IsGpt2File(path) ? Gpt2Tokenizer.Instance : HuggingFace.TokenizerJsonLoader.Load(path);
        }

        var sentencePiece = Path.Combine(folder, SentencePieceTokenizer.FileName);
        if (File.Exists(sentencePiece) && TiktokenFileTokenizer.IsRankFile(sentencePiece))
        {
            return TiktokenFileTokenizer.Load(sentencePiece, config); // Meta's original Llama 3 files use this name
        }

        if (File.Exists(sentencePiece))
        {
            return LoadSentencePiece(sentencePiece, config);
        }

        var tiktoken = Directory.Exists(folder) ? Directory.GetFiles(folder, "*" + TiktokenFileTokenizer.Extension) : [];
        if (tiktoken.Length == 1)
        {
            return TiktokenFileTokenizer.Load(tiktoken[0], config);
        }

        throw new ModelFolderException(tiktoken.Length > 1
            ? $"{folder}: several {TiktokenFileTokenizer.Extension} files; keep the model's one."
            : $"{folder}: no tokenizer; a model folder needs {JsonFileName} with {ConfigFileName}, a SentencePiece {SentencePieceTokenizer.FileName}, "
              + $"or a tiktoken file ({TiktokenFileTokenizer.Extension}, or {SentencePieceTokenizer.FileName} in tiktoken's text format) with {ConfigFileName}.");
    }

    private static ITokenizer LoadSentencePiece(string path, JsonElement? config)
    {
        // Llama-family tokenizers add BOS unless their configuration says otherwise.
        var addBos = config is not { } settings || !settings.TryGetProperty("add_bos_token", out var add) || add.ValueKind != JsonValueKind.False;
        // Hugging Face's Llama tokenizer is "legacy" unless its configuration says legacy: false.
        var legacy = config is not { } c || !c.TryGetProperty("legacy", out var value) || value.ValueKind != JsonValueKind.False;
        return SentencePieceTokenizer.Load(path, addBos, AddedTokens(config), legacy);
    }

    /// <summary>tokenizer_config.json's added_tokens_decoder ({"32000": {"content": "&lt;|im_start|&gt;", ...}}) as text to id.</summary>
    private static Dictionary<string, int> AddedTokens(JsonElement? config)
    {
        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        if (config is { } settings && settings.TryGetProperty("added_tokens_decoder", out var decoder) && decoder.ValueKind == JsonValueKind.Object)
        {
            foreach (var entry in decoder.EnumerateObject())
            {
                if (int.TryParse(entry.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id)
                    && entry.Value.ValueKind == JsonValueKind.Object
                    && entry.Value.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String
                    && content.GetString() is { Length: > 0 } text)
                {
                    added[text] = id;
                }
            }
        }

        return added;
    }

    private static JsonElement? ReadConfig(string folder)
    {
        var path = Path.Combine(folder, ConfigFileName);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            return document.RootElement.Clone();
        }
        catch (JsonException exception)
        {
            throw new ModelFolderException($"{path}: not valid JSON: {exception.Message}", exception);
        }
    }
}
