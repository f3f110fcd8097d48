using System.Text;
using System.Text.Json;
using Appliance.Engine;
using Microsoft.ML.Tokenizers;

namespace Appliance.Runtime.Onnx.Tokenization.HuggingFace;

/// <summary>
/// A Hugging Face tokenizer.json of the SentencePiece kind (Gemma 3, Llama 2): BPE over "▁"-escaped text with byte
/// fallback. The merges run in Microsoft.ML.Tokenizers' BpeTokenizer (a port of Hugging Face's BPE); what it lacks is
/// done here: characters outside the vocabulary become their UTF-8 byte pieces ("&lt;0xE2&gt;"), added tokens in the
/// text are cut out first, and decoding turns "▁" back into spaces and byte pieces back into characters.
/// </summary>
/// <remarks>
/// Cutting the text at characters outside the vocabulary is exact: such a character is never part of a merge, so no
/// merge can cross it.
/// </remarks>
public sealed class HuggingFaceSentencePieceTokenizer : ITokenizer
{
    private readonly BpeTokenizer _bpe;
    private readonly HashSet<string> _vocabulary;
    private readonly string[] _pieces;
    private readonly HashSet<int> _addedIds;
    private readonly HashSet<int> _specialIds;
    private readonly int[] _byteIds;
    private readonly int? _unknownId;
    private readonly AddedTokenMatcher _addedTokens;
    private readonly SentencePieceJsonRules _rules;
    private readonly PostProcessor _postProcessor;

    private HuggingFaceSentencePieceTokenizer(
        BpeTokenizer bpe, Dictionary<string, int> vocabulary, Dictionary<string, int> added, Dictionary<int, (bool Left, bool Right)> strips, HashSet<int> specialIds,
        int? unknownId, SentencePieceJsonRules rules, PostProcessor postProcessor)
    {
        _postProcessor = postProcessor;
        _bpe = bpe;
        _vocabulary = [.. vocabulary.Keys];
        _unknownId = unknownId;
        _rules = rules;
        _addedTokens = new AddedTokenMatcher(added, strips);
        _specialIds = specialIds;
        _addedIds = [.. added.Values];
        _pieces = new string[Math.Max(vocabulary.Values.DefaultIfEmpty(-1).Max(), added.Values.DefaultIfEmpty(-1).Max()) + 1];
        foreach (var (piece, id) in vocabulary.Concat(added))
        {
            _pieces[id] = piece;
        }

        _byteIds = [.. Enumerable.Range(0, 256).Select(b => vocabulary.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1)];
    }

    public static HuggingFaceSentencePieceTokenizer Load(string path)
    {
        using var document = TokenizerJson.Read(path);
        return FromJson(document.RootElement, path);
    }

    internal static HuggingFaceSentencePieceTokenizer FromJson(JsonElement root, string path)
    {
        var model = TokenizerJson.BpeModel(root, path);

        var rules = SentencePieceJsonRules.Read(root, path);
        var vocabulary = TokenizerJson.Vocabulary(model, path);
        var added = TokenizerJson.AddedTokens(root);
        var unknown = TokenizerJson.Optional(model, "unk_token")?.GetString();
        int? unknownId = unknown is not null && vocabulary.TryGetValue(unknown, out var id) ? id : null;
        var bpe = BpeTokenizer.Create(new BpeOptions(vocabulary)
        {
            Merges = TokenizerJson.Merges(model, path),
            ByteLevel = false,
            PreTokenizer = null,
            Normalizer = null,
        });
        return new HuggingFaceSentencePieceTokenizer(bpe, vocabulary, added, TokenizerJson.AddedTokenStrips(root), TokenizerJson.SpecialTokenIds(root), unknownId, rules, PostProcessor.Read(root, path));
    }

    public IReadOnlyList<int> Encode(string text)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        foreach (var (offset, length, addedId) in _addedTokens.Split(text))
        {
            if (addedId is { } added)
            {
                ids.Add(added);
            }
            else
            {
                EncodeNormalized(_rules.Normalize(text.AsSpan(offset, length), atStart: offset == 0), ids);
            }
        }

        return ids;
    }

    public IReadOnlyList<int> EncodeWithSpecialTokens(string text) => _postProcessor.Apply(Encode(text));

    /// <summary>
    /// A piece's bytes: its byte for byte pieces, its text with the word mark as a space (added tokens that are not
    /// special too: Gemma's whitespace runs); nothing for special tokens and the unknown piece.
    /// </summary>
    public byte[]? TokenBytes(int id)
    {
        if ((uint)id >= (uint)_pieces.Length || _pieces[id] is not { } piece || _specialIds.Contains(id) || id == _unknownId)
        {
            return null;
        }

        return _rules.DecodeBytes && !_addedIds.Contains(id) && ByteValue(piece) is { } value
            ? [value]
            : System.Text.Encoding.UTF8.GetBytes(piece.Replace('\u2581', ' '));
    }

    public string Decode(IEnumerable<int> ids)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        foreach (var id in ids)
        {
            if ((uint)id >= (uint)_pieces.Length || _pieces[id] is not { } piece)
            {
                continue;
            }

            if (_rules.DecodeBytes && ByteValue(piece) is { } value)
            {
                bytes.Add(value);
                continue;
            }

            FlushBytes(bytes, text);
            text.Append(_rules.DecodePiece(piece));
        }

        FlushBytes(bytes, text);
        return _rules.Finish(text.ToString());
    }

    private void EncodeNormalized(string normalized, List<int> ids)
    {
        var knownStart = 0;
        var position = 0;
        while (position < normalized.Length)
        {
            var rune = Rune.GetRuneAt(normalized, position);
            var width = rune.Utf16SequenceLength;
            if (!_vocabulary.Contains(normalized.Substring(position, width)))
            {
                EncodeKnown(normalized, knownStart, position, ids);
                EncodeUnknown(rune, ids);
                knownStart = position + width;
            }

            position += width;
        }

        EncodeKnown(normalized, knownStart, normalized.Length, ids);
    }

    private void EncodeKnown(string text, int start, int end, List<int> ids)
    {
        if (end > start)
        {
            ids.AddRange(_bpe.EncodeToIds(text.AsSpan(start, end - start), considerPreTokenization: false, considerNormalization: false));
        }
    }

    /// <summary>A character outside the vocabulary: its UTF-8 bytes as byte pieces, or the unknown token.</summary>
    private void EncodeUnknown(Rune rune, List<int> ids)
    {
        Span<byte> utf8 = stackalloc byte[4];
        var count = rune.EncodeToUtf8(utf8);
        var allBytesKnown = true;
        for (var i = 0; i < count; i++)
        {
            allBytesKnown &= _byteIds[utf8[i]] >= 0;
        }

        if (allBytesKnown)
        {
            for (var i = 0; i < count; i++)
            {
                ids.Add(_byteIds[utf8[i]]);
            }
        }
        else if (_unknownId is { } unknown && (ids.Count == 0 || ids[^1] != unknown))
        {
            ids.Add(unknown); // fuse_unk: a run of unknown characters is one unknown token
        }
    }

    /// <summary>Byte pieces as Hugging Face's ByteFallback decoder reads them: invalid UTF-8 gives one U+FFFD per byte.</summary>
    private static void FlushBytes(List<byte> bytes, StringBuilder text)
    {
        if (bytes.Count == 0)
        {
            return;
        }

        try
        {
            text.Append(StrictUtf8.GetString([.. bytes]));
        }
        catch (DecoderFallbackException)
        {
            text.Append('\uFFFD', bytes.Count);
        }

        bytes.Clear();
    }

    private static byte? ByteValue(string piece) =>
        piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
        && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out var value)
            ? value
            : null;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
