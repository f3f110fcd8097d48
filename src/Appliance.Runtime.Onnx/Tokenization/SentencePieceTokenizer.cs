using Appliance.Engine;
using Microsoft.ML.Tokenizers;

namespace Appliance.Runtime.Onnx.Tokenization;

/// <summary>
/// A SentencePiece BPE model (tokenizer.model: Llama 2, Mistral and Gemma-style) through Microsoft.ML.Tokenizers'
/// LlamaTokenizer, with byte fallback. Whether BOS is added follows the model's tokenizer_config.json.
/// </summary>
/// <remarks>
/// Microsoft.ML.Tokenizers 2.0.1 drops the space of the first word piece after a run of byte-fallback tokens when
/// the ids start with such a run (decoding "&lt;0xF0&gt;...▁and" gives "🚀and"). Streaming decodes windows that can
/// start that way, so such ids are decoded behind a plain anchor piece whose text is then removed.
/// </remarks>
public sealed class SentencePieceTokenizer : ITokenizer
{
    public const string FileName = "tokenizer.model";

    private readonly LlamaTokenizer _tokenizer;
    private readonly bool _addBeginningOfSentence;
    private readonly HashSet<int> _byteTokens;
    private readonly int _anchor;
    private readonly string _anchorText;

    private SentencePieceTokenizer(LlamaTokenizer tokenizer, bool addBeginningOfSentence)
    {
        _tokenizer = tokenizer;
        _addBeginningOfSentence = addBeginningOfSentence;
        _byteTokens = [.. tokenizer.Vocabulary.Where(piece => IsBytePiece(piece.Key)).Select(piece => piece.Value)];
        _anchor = tokenizer.Vocabulary.TryGetValue("a", out var anchor) ? anchor : -1;
        _anchorText = _anchor >= 0 ? tokenizer.Decode([_anchor]) : string.Empty;
    }

    public int BeginningOfSentenceId => _tokenizer.BeginningOfSentenceId;

    public static SentencePieceTokenizer Load(string path, bool addBeginningOfSentence)
    {
        using var stream = File.OpenRead(path);
        return new SentencePieceTokenizer(LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false), addBeginningOfSentence);
    }

    public IReadOnlyList<int> Encode(string text) =>
        _tokenizer.EncodeToIds(text, addBeginningOfSentence: _addBeginningOfSentence, addEndOfSentence: false, considerPreTokenization: true, considerNormalization: true);

    public string Decode(IEnumerable<int> ids)
    {
        var list = ids as IReadOnlyList<int> ?? [.. ids];
        if (list.Count == 0 || _anchor < 0 || !_byteTokens.Contains(list[0]))
        {
            return _tokenizer.Decode(list);
        }

        var text = _tokenizer.Decode([_anchor, .. list]);
        return text.StartsWith(_anchorText, StringComparison.Ordinal) ? text[_anchorText.Length..] : text;
    }

    /// <summary>Byte-fallback pieces are written "&lt;0xAB&gt;".</summary>
    private static bool IsBytePiece(string piece) =>
        piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>' && Uri.IsHexDigit(piece[3]) && Uri.IsHexDigit(piece[4]);
}
