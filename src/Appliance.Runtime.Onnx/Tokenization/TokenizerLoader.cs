using System.Text.Json;
using Appliance.Engine;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Runtime.Onnx.Tokenization;

/// <summary>
/// Chooses the tokenizer a model folder carries: tokenizer.json with tokenizer_config.json, or a SentencePiece
/// tokenizer.model; a folder with neither is refused.
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
            var tokenizerClass = config is { } c && c.TryGetProperty("tokenizer_class", out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
            // GPT-2's own vocabulary runs on the tiktoken implementation, which is faster than the generic BPE.
            return tokenizerClass is "GPT2Tokenizer" or "GPT2TokenizerFast"
                ? Gpt2Tokenizer.Instance
                : HuggingFace.HuggingFaceTokenizer.Load(Path.Combine(folder, JsonFileName));
        }

        var sentencePiece = Path.Combine(folder, SentencePieceTokenizer.FileName);
        if (File.Exists(sentencePiece))
        {
            // Llama-family tokenizers add BOS unless their configuration says otherwise.
            var addBos = config is not { } settings || !settings.TryGetProperty("add_bos_token", out var add) || add.ValueKind != JsonValueKind.False;
            return SentencePieceTokenizer.Load(sentencePiece, addBos);
        }

        throw new ModelFolderException(
            $"{folder}: no tokenizer; a model folder needs {JsonFileName} with {ConfigFileName}, or a SentencePiece {SentencePieceTokenizer.FileName}.");
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
