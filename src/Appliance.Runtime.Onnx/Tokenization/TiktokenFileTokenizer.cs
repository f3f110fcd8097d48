using System.Text.Json;
using Appliance.Engine;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Tokenization.HuggingFace;
using Microsoft.ML.Tokenizers;

namespace Appliance.Runtime.Onnx.Tokenization;

/// <summary>
/// A tiktoken rank file ("base64-token rank" per line: Meta's original Llama 3 tokenizer.model, Qwen's qwen.tiktoken)
/// through Microsoft.ML.Tokenizers' TiktokenTokenizer. Such a file carries neither its split regex nor its special
/// tokens, so tokenizer_config.json must give both: "pat_str" (the regex, as tiktoken names it) and
/// "added_tokens_decoder" (id to content, as transformers writes it). Guessing either would degrade answers silently.
/// </summary>
public static class TiktokenFileTokenizer
{
    public const string Extension = ".tiktoken";
    public const string PatternKey = "pat_str";
    public const string SpecialTokensKey = "added_tokens_decoder";

    /// <summary>Whether a file is a tiktoken rank file: its first line is base64 text, a space and a number.</summary>
    public static bool IsRankFile(string path)
    {
        using var reader = new StreamReader(path);
        var buffer = new char[512];
        var read = reader.ReadBlock(buffer, 0, buffer.Length);
        var line = new string(buffer, 0, read).Split('\n')[0].TrimEnd('\r');
        var space = line.IndexOf(' ', StringComparison.Ordinal);
        return space > 0 && int.TryParse(line.AsSpan(space + 1), out _) && line[..space].All(c => char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '=');
    }

    public static ITokenizer Load(string path, JsonElement? config)
    {
        var configPath = Path.Combine(Path.GetDirectoryName(path)!, TokenizerLoader.ConfigFileName);
        if (config is not { } settings)
        {
            throw new ModelFolderException($"{path} is a tiktoken file; it needs {configPath} with '{PatternKey}' and '{SpecialTokensKey}'.");
        }

        if (!settings.TryGetProperty(PatternKey, out var patternValue) || patternValue.ValueKind != JsonValueKind.String)
        {
            throw new ModelFolderException($"{configPath}: '{PatternKey}' (the split regex of the tiktoken file) is required and must be a string.");
        }

        var special = SpecialTokens(settings, configPath);
        (System.Text.RegularExpressions.Regex, System.Text.RegularExpressions.Regex) pattern;
        try
        {
            pattern = CodePointRegex.Create(patternValue.GetString()!);
        }
        catch (ArgumentException exception)
        {
            throw new ModelFolderException($"{configPath}: '{PatternKey}' is not a usable regex: {exception.Message}", exception);
        }

        using var stream = File.OpenRead(path);
        try
        {
            var tokenizer = TiktokenTokenizer.Create(stream, new SplitSequencePreTokenizer([pattern], new AddedTokenMatcher(special)), normalizer: null, special);
            return new LibraryTokenizer(tokenizer, path);
        }
        catch (Exception exception) when (exception is FormatException or InvalidOperationException or ArgumentException)
        {
            throw new ModelFolderException($"{path}: not a readable tiktoken file: {exception.Message}", exception);
        }
    }

    private static Dictionary<string, int> SpecialTokens(JsonElement config, string configPath)
    {
        if (!config.TryGetProperty(SpecialTokensKey, out var decoder) || decoder.ValueKind != JsonValueKind.Object)
        {
            throw new ModelFolderException($"{configPath}: '{SpecialTokensKey}' (id to special token) is required for a tiktoken file.");
        }

        var tokens = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in decoder.EnumerateObject())
        {
            if (!int.TryParse(entry.Name, out var id) || !entry.Value.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
            {
                throw new ModelFolderException($"{configPath}: '{SpecialTokensKey}.{entry.Name}' must map a numeric id to an object with a 'content' string.");
            }

            tokens[content.GetString()!] = id;
        }

        return tokens;
    }

    /// <summary>Microsoft.ML.Tokenizers' tiktoken tokenizer as the engine's tokenizer.</summary>
    private sealed class LibraryTokenizer(TiktokenTokenizer tokenizer, string path) : ITokenizer
    {
        // The library keeps each rank's bytes to itself; the file says them, read with the model (a few MB): read on
        // first need, it was the file as it was then, which the models role may have replaced by a newer version's
        // while this one kept serving (a reload refused), or removed.
        private readonly Dictionary<int, byte[]> _bytes = File.ReadLines(path)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(parts => parts.Length == 2)
            .ToDictionary(parts => int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), parts => Convert.FromBase64String(parts[0]));

        public IReadOnlyList<int> Encode(string text) => tokenizer.EncodeToIds(text);

        public string Decode(IEnumerable<int> ids) => tokenizer.Decode(ids);

        public byte[]? TokenBytes(int id) => _bytes.GetValueOrDefault(id);
    }
}
