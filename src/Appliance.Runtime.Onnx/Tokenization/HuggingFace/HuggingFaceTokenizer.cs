using System.Text.Json;
using System.Text.RegularExpressions;
using Appliance.Engine;
using Appliance.Runtime.Onnx.Models;
using Microsoft.ML.Tokenizers;

namespace Appliance.Runtime.Onnx.Tokenization.HuggingFace;

/// <summary>
/// A Hugging Face tokenizer.json of the byte-level BPE kind (Llama 3 / 3.1, Qwen3, GPT-2): the file's vocabulary,
/// merges, Split regex pre-tokenizer, NFC normalizer and added tokens, built on Microsoft.ML.Tokenizers'
/// BpeTokenizer. Added tokens written in the text (for example "&lt;|im_start|&gt;") become their ids, as in
/// transformers. Anything the file asks for that is not understood refuses the model at load, naming the key.
/// </summary>
public sealed class HuggingFaceTokenizer : ITokenizer
{
    /// <summary>GPT-2's pre-tokenizer pattern, used when a ByteLevel pre-tokenizer splits with its own regex.</summary>
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly BpeTokenizer _tokenizer;
    private readonly bool _nfc;

    private HuggingFaceTokenizer(BpeTokenizer tokenizer, IReadOnlyDictionary<string, int> addedTokens, bool nfc)
    {
        _tokenizer = tokenizer;
        AddedTokens = addedTokens;
        _nfc = nfc;
    }

    /// <summary>Added and special tokens by their text.</summary>
    public IReadOnlyDictionary<string, int> AddedTokens { get; }

    public static HuggingFaceTokenizer Load(string path)
    {
        using var document = ReadJson(path);
        var root = document.RootElement;
        var model = Object(root, "model", path);
        var type = model.TryGetProperty("type", out var t) ? t.GetString() : null;
        if (type != "BPE")
        {
            throw Unsupported(path, "model.type", type);
        }

        if (model.TryGetProperty("byte_fallback", out var fallback) && fallback.ValueKind == JsonValueKind.True)
        {
            throw Unsupported(path, "model.byte_fallback", "true (SentencePiece-style BPE)");
        }

        var vocabulary = Object(model, "vocab", path).EnumerateObject().Select(p => new KeyValuePair<string, int>(p.Name, p.Value.GetInt32())).ToList();
        var merges = Merges(model, path);
        var added = AddedTokensOf(root);
        var known = vocabulary.Select(v => v.Key).ToHashSet(StringComparer.Ordinal);
        var options = new BpeOptions(vocabulary.Concat(added.Where(a => !known.Contains(a.Key))))
        {
            Merges = merges,
            ByteLevel = true,
            SpecialTokens = added,
            PreTokenizer = new RegexPreTokenizer(new Regex(PreTokenizerPattern(root, path), RegexOptions.Compiled), added),
        };
        return new HuggingFaceTokenizer(BpeTokenizer.Create(options), added, UsesNfc(root, path));
    }

    // The normalizer is applied here: BpeOptions.Normalizer did not change what the regex pre-tokenizer saw.
    public IReadOnlyList<int> Encode(string text) =>
        _tokenizer.EncodeToIds(_nfc ? text.Normalize(System.Text.NormalizationForm.FormC) : text);

    public string Decode(IEnumerable<int> ids) => _tokenizer.Decode(ids);

    private static List<string> Merges(JsonElement model, string path)
    {
        var merges = new List<string>();
        foreach (var merge in Array(model, "merges", path))
        {
            merges.Add(merge.ValueKind switch
            {
                JsonValueKind.String => merge.GetString()!,
                JsonValueKind.Array when merge.GetArrayLength() == 2 => $"{merge[0].GetString()} {merge[1].GetString()}",
                _ => throw new ModelFolderException($"{path}: 'model.merges' holds an entry that is neither \"a b\" nor [\"a\", \"b\"]."),
            });
        }

        return merges;
    }

    private static Dictionary<string, int> AddedTokensOf(JsonElement root)
    {
        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        if (root.TryGetProperty("added_tokens", out var tokens) && tokens.ValueKind == JsonValueKind.Array)
        {
            foreach (var token in tokens.EnumerateArray())
            {
                added[token.GetProperty("content").GetString()!] = token.GetProperty("id").GetInt32();
            }
        }

        return added;
    }

    /// <summary>The split regex: a Sequence of one Split (Isolated) and a ByteLevel without regex, or a plain ByteLevel.</summary>
    private static string PreTokenizerPattern(JsonElement root, string path)
    {
        var preTokenizer = Object(root, "pre_tokenizer", path);
        var steps = preTokenizer.GetProperty("type").GetString() == "Sequence"
            ? [.. Array(preTokenizer, "pretokenizers", path)]
            : new List<JsonElement> { preTokenizer };
        string? pattern = null;
        foreach (var step in steps)
        {
            switch (step.GetProperty("type").GetString())
            {
                case "Split" when pattern is null && step.TryGetProperty("pattern", out var p) && p.TryGetProperty("Regex", out var regex)
                    && (!step.TryGetProperty("behavior", out var behavior) || behavior.GetString() == "Isolated")
                    && (!step.TryGetProperty("invert", out var invert) || invert.ValueKind == JsonValueKind.False):
                    pattern = regex.GetString();
                    break;
                case "ByteLevel" when !step.TryGetProperty("add_prefix_space", out var prefix) || prefix.ValueKind != JsonValueKind.True:
                    if (!step.TryGetProperty("use_regex", out var useRegex) || useRegex.ValueKind == JsonValueKind.True)
                    {
                        pattern ??= Gpt2Pattern;
                    }

                    break;
                default:
                    throw Unsupported(path, "pre_tokenizer", step.GetRawText());
            }
        }

        return pattern ?? throw Unsupported(path, "pre_tokenizer", "a byte-level pre-tokenizer without a split pattern");
    }

    private static bool UsesNfc(JsonElement root, string path)
    {
        if (!root.TryGetProperty("normalizer", out var normalizer) || normalizer.ValueKind == JsonValueKind.Null)
        {
            return false;
        }

        return normalizer.GetProperty("type").GetString() == "NFC" ? true : throw Unsupported(path, "normalizer", normalizer.GetRawText());
    }

    private static JsonDocument ReadJson(string path)
    {
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException exception)
        {
            throw new ModelFolderException($"{path}: not valid JSON: {exception.Message}", exception);
        }
    }

    private static JsonElement Object(JsonElement parent, string name, string path) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Object
            ? value
            : throw new ModelFolderException($"{path}: '{name}' must be an object.");

    private static JsonElement.ArrayEnumerator Array(JsonElement parent, string name, string path) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Array
            ? value.EnumerateArray()
            : throw new ModelFolderException($"{path}: '{name}' must be an array.");

    private static ModelFolderException Unsupported(string path, string key, string? value) =>
        new($"{path}: '{key}' = {value} is not supported yet (byte-level BPE tokenizer.json files are).");
}
