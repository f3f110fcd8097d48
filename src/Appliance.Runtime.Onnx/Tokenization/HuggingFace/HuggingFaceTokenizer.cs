using System.Text.Json;
using System.Text.RegularExpressions;
using Appliance.Engine;
using Microsoft.ML.Tokenizers;

namespace Appliance.Runtime.Onnx.Tokenization.HuggingFace;

/// <summary>
/// A Hugging Face tokenizer.json of the byte-level BPE kind (Llama 3 / 3.1, Qwen3, DeepSeek V3, GPT-2): the file's
/// vocabulary, merges, Split regex pre-tokenizers, NFC normalizer and added tokens, built on Microsoft.ML.Tokenizers'
/// BpeTokenizer. Added tokens written in the text (for example "&lt;|im_start|&gt;") become their ids, as in
/// transformers. Anything the file asks for that is not understood refuses the model at load, naming the key.
/// </summary>
public sealed class HuggingFaceTokenizer : ITokenizer
{
    /// <summary>GPT-2's pre-tokenizer pattern, used when a ByteLevel pre-tokenizer splits with its own regex.</summary>
    private const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly BpeTokenizer _tokenizer;
    private readonly bool _nfc;

    /// <summary>Set when the model's ignore_merges is: a piece found whole in the vocabulary is that token.</summary>
    private readonly PreTokenizer? _wholeWordPieces;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _addedTokenIds;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _wholeWords;

    private readonly PostProcessor _postProcessor;
    private readonly HashSet<int> _specialIds;
    private byte[]?[]? _tokenBytes;

    private HuggingFaceTokenizer(
        BpeTokenizer tokenizer, IReadOnlyDictionary<string, int> addedTokens, HashSet<int> specialIds, bool nfc, PostProcessor postProcessor, bool ignoreMerges)
    {
        _wholeWordPieces = ignoreMerges ? tokenizer.PreTokenizer : null;
        _wholeWords = new Dictionary<string, int>(ignoreMerges ? tokenizer.Vocabulary : new Dictionary<string, int>(), StringComparer.Ordinal)
            .GetAlternateLookup<ReadOnlySpan<char>>();
        _addedTokenIds = new Dictionary<string, int>(addedTokens, StringComparer.Ordinal).GetAlternateLookup<ReadOnlySpan<char>>();
        _specialIds = specialIds;
        _tokenizer = tokenizer;
        _postProcessor = postProcessor;
        AddedTokens = addedTokens;
        _nfc = nfc;
    }

    /// <summary>Added and special tokens by their text.</summary>
    public IReadOnlyDictionary<string, int> AddedTokens { get; }

    public static HuggingFaceTokenizer Load(string path)
    {
        using var document = TokenizerJson.Read(path);
        return FromJson(document.RootElement, path);
    }

    internal static HuggingFaceTokenizer FromJson(JsonElement root, string path)
    {
        var model = TokenizerJson.BpeModel(root, path);

        if (TokenizerJson.IsTrue(model, "byte_fallback"))
        {
            throw TokenizerJson.Unsupported(path, "model.byte_fallback", "true (a SentencePiece-style file; load it as one)");
        }

        var vocabulary = TokenizerJson.Vocabulary(model, path);
        var added = TokenizerJson.AddedTokens(root);
        var options = new BpeOptions(vocabulary.Concat(added.Where(a => !vocabulary.ContainsKey(a.Key))))
        {
            Merges = TokenizerJson.Merges(model, path),
            ByteLevel = true,
            SpecialTokens = added,
            PreTokenizer = new SplitSequencePreTokenizer(SplitPatterns(root, path), new AddedTokenMatcher(added, TokenizerJson.AddedTokenStrips(root))),
        };
        return new HuggingFaceTokenizer(
            BpeTokenizer.Create(options), added, TokenizerJson.SpecialTokenIds(root), UsesNfc(root, path), PostProcessor.Read(root, path),
            TokenizerJson.IsTrue(model, "ignore_merges"));
    }

    // The normalizer is applied here: BpeOptions.Normalizer did not change what the pre-tokenizer saw.
    public IReadOnlyList<int> Encode(string text)
    {
        var normalized = _nfc ? text.Normalize(System.Text.NormalizationForm.FormC) : text;
        return _wholeWordPieces is null ? _tokenizer.EncodeToIds(normalized) : EncodeIgnoringMerges(normalized, _wholeWordPieces);
    }

    /// <summary>
    /// Llama 3's ignore_merges (tiktoken's rule): a piece the vocabulary holds whole is that one token, even where the
    /// merges would have split it (" việc" is one token, not three; 587 of Llama 3's tokens differ so). BpeTokenizer has
    /// no such option, so the pieces are cut here and only the others go through its merges.
    /// </summary>
    private List<int> EncodeIgnoringMerges(string text, PreTokenizer pieces)
    {
        Span<char> mapped = stackalloc char[256];
        var ids = new List<int>();
        foreach (var (offset, length) in pieces.PreTokenize(text))
        {
            var piece = text.AsSpan(offset, length);
            if (_addedTokenIds.TryGetValue(piece, out var added))
            {
                ids.Add(added); // the pre-tokenizer cuts added tokens out whole
            }
            else if (ByteLevelAlphabet.TryMap(piece, mapped, out var written) && _wholeWords.TryGetValue(mapped[..written], out var whole))
            {
                ids.Add(whole);
            }
            else
            {
                ids.AddRange(_tokenizer.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: false));
            }
        }

        return ids;
    }

    public IReadOnlyList<int> EncodeWithSpecialTokens(string text) => _postProcessor.Apply(Encode(text));

    public string Decode(IEnumerable<int> ids) => _tokenizer.Decode(ids);

    /// <summary>
    /// A vocabulary entry's bytes, undoing the byte-level alphabet; an added token that is not special is its text as
    /// written; nothing for special tokens.
    /// </summary>
    public byte[]? TokenBytes(int id)
    {
        var all = _tokenBytes ??= TokenBytesById();
        return (uint)id < (uint)all.Length ? all[id] : null;
    }

    private byte[]?[] TokenBytesById()
    {
        var all = ByteLevelAlphabet.BytesOf(_tokenizer.Vocabulary, AddedTokens.Values.ToHashSet());
        foreach (var (text, id) in AddedTokens)
        {
            if (!_specialIds.Contains(id) && (uint)id < (uint)all.Length)
            {
                all[id] = System.Text.Encoding.UTF8.GetBytes(text);
            }
        }

        return all;
    }

    /// <summary>The split regexes: Split steps (Isolated, not inverted) and a ByteLevel step without a prefix space.</summary>
    private static List<(Regex Plain, Regex CodePoints)> SplitPatterns(JsonElement root, string path)
    {
        var patterns = new List<(Regex Plain, Regex CodePoints)>();
        var byteLevel = false;
        foreach (var step in TokenizerJson.Steps(TokenizerJson.Optional(root, "pre_tokenizer"), "pretokenizers", path))
        {
            if (byteLevel)
            {
                // A split after ByteLevel would see its byte-mapped characters (a Digits step would split Cyrillic
                // letters whose bytes map to ² or ½): every real file puts ByteLevel last.
                throw TokenizerJson.Unsupported(path, "pre_tokenizer", $"a step after ByteLevel: {step.GetRawText()}");
            }

            switch (TokenizerJson.Type(step))
            {
                case "Split" when step.TryGetProperty("pattern", out var p) && p.TryGetProperty("Regex", out var regex)
                    && (!step.TryGetProperty("behavior", out var behavior) || behavior.GetString() == "Isolated")
                    && !TokenizerJson.IsTrue(step, "invert"):
                    patterns.Add(Compile(regex.GetString()!, path));
                    break;
                case "Digits":
                    // Each digit on its own (SmolLM), or runs of digits, split off as the tokenizers library does
                    // (char::is_numeric: every Unicode number, not only 0-9).
                    patterns.Add(Compile(TokenizerJson.IsTrue(step, "individual_digits") ? @"\p{N}" : @"\p{N}+", path));
                    break;
                case "ByteLevel" when !TokenizerJson.IsTrue(step, "add_prefix_space"):
                    byteLevel = true;
                    if (!step.TryGetProperty("use_regex", out var useRegex) || useRegex.ValueKind == JsonValueKind.True)
                    {
                        patterns.Add(CodePointRegex.Create(Gpt2Pattern));
                    }

                    break;
                default:
                    throw TokenizerJson.Unsupported(path, "pre_tokenizer", step.GetRawText());
            }
        }

        return byteLevel && patterns.Count > 0
            ? patterns
            : throw TokenizerJson.Unsupported(path, "pre_tokenizer", "a pre-tokenizer without a ByteLevel step and a split pattern");
    }

    private static (Regex Plain, Regex CodePoints) Compile(string pattern, string path)
    {
        try
        {
            return CodePointRegex.Create(pattern);
        }
        catch (ArgumentException exception)
        {
            throw TokenizerJson.Unsupported(path, "pre_tokenizer", $"{pattern} ({exception.Message})");
        }
    }

    private static bool UsesNfc(JsonElement root, string path)
    {
        var steps = TokenizerJson.Steps(TokenizerJson.Optional(root, "normalizer"), "normalizers", path);
        return steps.Count switch
        {
            0 => false,
            1 when TokenizerJson.Type(steps[0]) == "NFC" => true,
            _ => throw TokenizerJson.Unsupported(path, "normalizer", root.GetProperty("normalizer").GetRawText()),
        };
    }
}
