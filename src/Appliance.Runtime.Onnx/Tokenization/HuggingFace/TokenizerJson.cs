using System.Text.Json;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Runtime.Onnx.Tokenization.HuggingFace;

/// <summary>Reading a Hugging Face tokenizer.json: typed access that names the offending key when the file is wrong.</summary>
internal static class TokenizerJson
{
    public static JsonDocument Read(string path)
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

    public static JsonElement Object(JsonElement parent, string name, string path) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Object
            ? value
            : throw new ModelFolderException($"{path}: '{name}' must be an object.");

    public static JsonElement.ArrayEnumerator Array(JsonElement parent, string name, string path) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Array
            ? value.EnumerateArray()
            : throw new ModelFolderException($"{path}: '{name}' must be an array.");

    /// <summary>The file's "model", which must be BPE (the only kind the appliance reads).</summary>
    public static JsonElement BpeModel(JsonElement root, string path)
    {
        var model = Object(root, "model", path);
        return Type(model) is var type && type == "BPE" ? model : throw Unsupported(path, "model.type", type);
    }

    public static string? Type(JsonElement element) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty("type", out var type) ? type.GetString() : null;

    public static bool IsTrue(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.True;

    /// <summary>The element, or null when the key is missing or JSON null.</summary>
    public static JsonElement? Optional(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    /// <summary>A normalizer or pre-tokenizer as its list of steps: a Sequence's members, or the one step itself.</summary>
    public static List<JsonElement> Steps(JsonElement? element, string sequenceKey, string path) =>
        element is not { } value ? []
        : Type(value) == "Sequence" ? [.. Array(value, sequenceKey, path)]
        : [value];

    public static Dictionary<string, int> Vocabulary(JsonElement model, string path) =>
        Object(model, "vocab", path).EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32(), StringComparer.Ordinal);

    /// <summary>Merges in either form the files use: "a b" strings or ["a", "b"] pairs (Gemma 3).</summary>
    public static List<string> Merges(JsonElement model, string path)
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

    /// <summary>Added and special tokens by their text.</summary>
    public static Dictionary<string, int> AddedTokens(JsonElement root)
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

    /// <summary>Added tokens (by id) that strip the whitespace on their left (lstrip) or right (rstrip).</summary>
    public static Dictionary<int, (bool Left, bool Right)> AddedTokenStrips(JsonElement root)
    {
        var strips = new Dictionary<int, (bool, bool)>();
        if (root.TryGetProperty("added_tokens", out var tokens) && tokens.ValueKind == JsonValueKind.Array)
        {
            foreach (var token in tokens.EnumerateArray())
            {
                if (IsTrue(token, "lstrip") || IsTrue(token, "rstrip"))
                {
                    strips[token.GetProperty("id").GetInt32()] = (IsTrue(token, "lstrip"), IsTrue(token, "rstrip"));
                }
            }
        }

        return strips;
    }

    /// <summary>Ids of the added tokens marked special (control markers, not text: Gemma's whitespace runs are added but not special).</summary>
    public static HashSet<int> SpecialTokenIds(JsonElement root) =>
        root.TryGetProperty("added_tokens", out var tokens) && tokens.ValueKind == JsonValueKind.Array
            ? [.. tokens.EnumerateArray().Where(t => IsTrue(t, "special")).Select(t => t.GetProperty("id").GetInt32())]
            : [];

    public static ModelFolderException Unsupported(string path, string key, string? value) =>
        new($"{path}: '{key}' = {Shorten(value)} is not supported.");

    private static string? Shorten(string? value) => value is { Length: > 300 } ? value[..300] + "…" : value;
}
