using System.Text;
using Appliance.Engine;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Tokenization.HuggingFace;
using Appliance.Runtime.Onnx.Tokenization.SentencePiece;

namespace Appliance.Runtime.Onnx.Tokenization;

/// <summary>
/// A SentencePiece tokenizer.model (Llama 2, Mistral, Gemma), BPE or unigram, encoded as sentencepiece itself does:
/// the normalizer's whitespace rules, its segmentation algorithm, byte fallback for characters outside the
/// vocabulary. Special tokens written in the text (control pieces such as "&lt;s&gt;", the unknown piece, and the
/// folder's added tokens) become their ids, as Hugging Face's tokenizers do for rendered chat templates. The text after
/// one is encoded as sentencepiece encodes a fresh input, with its dummy-prefix space, as Hugging Face's default
/// ("legacy") Llama tokenizer and Meta's reference code do; tokenizer_config.json's "legacy": false gives it none.
/// A plain prompt gets the BOS unless
/// tokenizer_config.json says add_bos_token false.
/// </summary>
/// <remarks>
/// Written here rather than taken from Microsoft.ML.Tokenizers: its LlamaTokenizer merges runs of spaces differently
/// from sentencepiece's BPE and does not run unigram models with byte fallback as sentencepiece does, which models
/// trained with spm_train showed. Only the identity normalizer is supported; a model with a compiled character map
/// (nmt_nfkc and the like) is refused by name rather than encoded wrongly.
/// </remarks>
public sealed class SentencePieceTokenizer : ITokenizer
{
    public const string FileName = "tokenizer.model";
    private const char SpaceSymbol = '\u2581';

    private readonly SentencePieceModel _model;
    private readonly PieceVocabulary _vocabulary;
    private readonly BpeSegmenter? _bpe;
    private readonly UnigramSegmenter? _unigram;
    private readonly AddedTokenMatcher _specialTokens;
    private readonly int[] _byteIds;
    private readonly int[] _byteValueOfId;
    private readonly int _unknownId;
    private readonly Dictionary<int, string> _addedBeyondModel; // a fine-tune's added tokens past the model's pieces (ChatML's <|im_start|>)
    private readonly bool _addBeginningOfSentence;
    private readonly bool _legacy;

    private SentencePieceTokenizer(SentencePieceModel model, bool addBeginningOfSentence, IReadOnlyDictionary<string, int> addedTokens, bool legacy)
    {
        _legacy = legacy;
        _model = model;
        _addBeginningOfSentence = addBeginningOfSentence && model.BeginningOfSentenceId >= 0;
        _vocabulary = new PieceVocabulary(model.Pieces);
        _bpe = model.Algorithm == SentencePieceAlgorithm.Bpe ? new BpeSegmenter(_vocabulary) : null;
        _unigram = model.Algorithm == SentencePieceAlgorithm.Unigram ? new UnigramSegmenter(_vocabulary) : null;
        _unknownId = IndexOf(model.Pieces, piece => piece.Type == PieceType.Unknown);
        _byteIds = new int[256];
        Array.Fill(_byteIds, -1);
        _byteValueOfId = new int[model.Pieces.Count];
        Array.Fill(_byteValueOfId, -1);
        var special = new Dictionary<string, int>(addedTokens, StringComparer.Ordinal);
        _addedBeyondModel = addedTokens.Where(token => token.Value >= model.Pieces.Count).ToDictionary(token => token.Value, token => token.Key);
        for (var id = 0; id < model.Pieces.Count; id++)
        {
            var piece = model.Pieces[id];
            if (piece.Type == PieceType.Byte && ByteValue(piece.Text) is { } value)
            {
                _byteIds[value] = id;
                _byteValueOfId[id] = value;
            }
            else if (piece.Type is PieceType.Control or PieceType.Unknown && piece.Text.Length > 0)
            {
                special.TryAdd(piece.Text, id);
            }
        }

        _specialTokens = new AddedTokenMatcher(special);
    }

    public int BeginningOfSentenceId => _model.BeginningOfSentenceId;

    /// <summary>
    /// Loads a tokenizer.model; <paramref name="addedTokens"/> are the folder's added tokens (text to id), which may lie
    /// past the model's own pieces (a fine-tune that added a chat format's markers).
    /// </summary>
    public static SentencePieceTokenizer Load(string path, bool addBeginningOfSentence, IReadOnlyDictionary<string, int>? addedTokens = null, bool legacy = true)
    {
        var model = SentencePieceModel.Read(path);
        if (model.Algorithm is not (SentencePieceAlgorithm.Bpe or SentencePieceAlgorithm.Unigram))
        {
            throw new ModelFolderException($"{path}: SentencePiece model type {model.Algorithm} is not supported (BPE and unigram are).");
        }

        if (model.PrecompiledCharsMapLength > 0)
        {
            throw new ModelFolderException(
                $"{path}: the SentencePiece normalizer '{model.NormalizerName}' rewrites characters through a compiled map, which this tokenizer does not apply; "
                + "only the identity normalizer is supported (ship the model's tokenizer.json instead).");
        }

        var known = (addedTokens ?? new Dictionary<string, int>()).Where(token => token.Value >= 0);
        return new SentencePieceTokenizer(model, addBeginningOfSentence, known.ToDictionary(token => token.Key, token => token.Value), legacy);
    }

    public IReadOnlyList<int> EncodeWithSpecialTokens(string text) =>
        _addBeginningOfSentence ? [_model.BeginningOfSentenceId, .. Encode(text)] : Encode(text);

    public IReadOnlyList<int> Encode(string text)
    {
        var ids = new List<int>(text.Length / 3 + 2);

        foreach (var (offset, length, specialId) in _specialTokens.Split(text))
        {
            if (specialId is { } id)
            {
                ids.Add(id);
            }
            else
            {
                EncodeNormalized(Normalize(text.AsSpan(offset, length), atStartOfText: _legacy || offset == 0), ids);
            }
        }

        return ids;
    }

    /// <summary>
    /// A piece's bytes: its byte for byte pieces, its text with the word mark as a space; nothing for control and
    /// user-defined pieces (markers such as a chat format's turn tokens, which must not appear inside constrained text).
    /// </summary>
    public byte[]? TokenBytes(int id)
    {
        if ((uint)id >= (uint)_model.Pieces.Count)
        {
            return null;
        }

        var piece = _model.Pieces[id];
        return piece.Type switch
        {
            PieceType.Byte when _byteValueOfId[id] >= 0 => [(byte)_byteValueOfId[id]],
            PieceType.Normal => Encoding.UTF8.GetBytes(piece.Text.Replace(SpaceSymbol, ' ')),
            _ => null,
        };
    }

    public string Decode(IEnumerable<int> ids)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        var atStart = true;
        foreach (var id in ids)
        {
            if ((uint)id >= (uint)_model.Pieces.Count)
            {
                if (_addedBeyondModel.TryGetValue(id, out var added))
                {
                    atStart &= !FlushBytes(bytes, text);
                    text.Append(added);
                    atStart = false;
                }

                continue;
            }

            if (_byteValueOfId[id] >= 0)
            {
                bytes.Add((byte)_byteValueOfId[id]);
                continue;
            }

            atStart &= !FlushBytes(bytes, text);
            var piece = _model.Pieces[id];
            var surface = piece.Type switch
            {
                PieceType.Control => string.Empty,
                PieceType.Unknown => " \u2047 ", // sentencepiece's surface for an unknown piece
                _ => piece.Text,
            };
            if (atStart && surface.Length > 0 && surface[0] == SpaceSymbol && (_model.AddDummyPrefix || _model.RemoveExtraWhitespaces))
            {
                surface = surface[1..]; // the dummy prefix encoding added
            }

            text.Append(surface.Replace(SpaceSymbol, ' '));
            atStart &= piece.Type == PieceType.Control; // only control pieces (BOS) come before the dummy prefix
        }

        FlushBytes(bytes, text);
        return text.ToString();
    }

    /// <summary>The normalizer's whitespace rules (identity otherwise): dummy prefix, extra spaces, "▁" for " ".</summary>
    private string Normalize(ReadOnlySpan<char> text, bool atStartOfText)
    {
        if (_model.RemoveExtraWhitespaces)
        {
            text = text.Trim(' ');
        }

        var normalized = new StringBuilder(text.Length + 1);
        if (text.Length > 0 && atStartOfText && _model.AddDummyPrefix)
        {
            normalized.Append(_model.EscapeWhitespaces ? SpaceSymbol : ' ');
        }

        var previousWasSpace = false;
        foreach (var c in text)
        {
            var isSpace = c == ' ';
            if (!(isSpace && previousWasSpace && _model.RemoveExtraWhitespaces))
            {
                normalized.Append(isSpace && _model.EscapeWhitespaces ? SpaceSymbol : c);
            }

            previousWasSpace = isSpace;
        }

        return normalized.ToString();
    }

    private void EncodeNormalized(string normalized, List<int> ids)
    {
        var pieces = new List<(int Start, int Length, int Id)>();
        if (_bpe is not null)
        {
            var segments = new List<(int Start, int Length)>();
            _bpe.Segment(normalized, segments);
            pieces.AddRange(segments.Select(s => (s.Start, s.Length, _vocabulary.MergeableId(normalized.AsSpan(s.Start, s.Length)) ?? -1)));
        }
        else
        {
            _unigram!.Segment(normalized, pieces);
        }

        for (var i = 0; i < pieces.Count; i++)
        {
            var (start, length, id) = pieces[i];
            if (id < 0)
            {
                // A run of characters outside the vocabulary is one unknown piece, as sentencepiece joins them.
                while (i + 1 < pieces.Count && pieces[i + 1].Id < 0)
                {
                    length += pieces[++i].Length;
                }
            }

            Emit(normalized.AsSpan(start, length), id, ids);
        }
    }

    /// <summary>A piece's id; text outside the vocabulary as its UTF-8 bytes (byte fallback) or the unknown id.</summary>
    private void Emit(ReadOnlySpan<char> piece, int id, List<int> ids)
    {
        if (id >= 0)
        {
            ids.Add(id);
            return;
        }

        if (_model.ByteFallback)
        {
            Span<byte> utf8 = stackalloc byte[Encoding.UTF8.GetMaxByteCount(piece.Length)];
            var count = Encoding.UTF8.GetBytes(piece, utf8);
            if (utf8[..count].ToArray().All(b => _byteIds[b] >= 0))
            {
                foreach (var b in utf8[..count])
                {
                    ids.Add(_byteIds[b]);
                }

                return;
            }
        }

        if (_unknownId < 0)
        {
            throw new InvalidOperationException("The SentencePiece model has no unknown piece for text outside its vocabulary.");
        }

        ids.Add(_unknownId);
    }

    /// <summary>Decodes pending byte pieces; invalid UTF-8 becomes U+FFFD. True when text was written.</summary>
    private static bool FlushBytes(List<byte> bytes, StringBuilder text)
    {
        if (bytes.Count == 0)
        {
            return false;
        }

        text.Append(Encoding.UTF8.GetString([.. bytes]));
        bytes.Clear();
        return true;
    }

    private static int? ByteValue(string piece) =>
        piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
        && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out var value)
            ? value
            : null;

    private static int IndexOf(IReadOnlyList<Piece> pieces, Func<Piece, bool> predicate)
    {
        for (var i = 0; i < pieces.Count; i++)
        {
            if (predicate(pieces[i]))
            {
                return i;
            }
        }

        return -1;
    }
}
