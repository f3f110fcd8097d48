namespace Appliance.Engine.Output;

/// <summary>
/// Streams text from tokens exactly: each new piece is the decoding of a short window of recent tokens minus the
/// decoding of the same window without the newest ones. Decoding in context keeps SentencePiece's word-leading
/// spaces, and output that ends in U+FFFD (ids that stop inside a multi-byte character) is held until the character
/// is complete. The window slides, so the work per token stays constant.
/// </summary>
public sealed class IncrementalDetokenizer(ITokenizer tokenizer)
{
    // A character spans at most 4 bytes; byte-level vocabularies can split it over as many tokens. Past this many
    // held tokens the bytes can never complete a character, so they are released as they decode (with U+FFFD).
    private const int MaxHeldTokens = 8;
    private const char Replacement = '\uFFFD';

    private readonly List<int> _ids = [];
    private int _prefixOffset;
    private int _readOffset;

    /// <summary>Adds one token and returns the text that is now complete (possibly empty).</summary>
    public string Push(int tokenId)
    {
        _ids.Add(tokenId);
        var prefix = Decode(_prefixOffset, _readOffset);
        var text = Decode(_prefixOffset, _ids.Count);
        var complete = text.Length > prefix.Length && text[^1] != Replacement && text.StartsWith(prefix, StringComparison.Ordinal);
        if (!complete && _ids.Count - _readOffset < MaxHeldTokens)
        {
            return string.Empty;
        }

        _prefixOffset = _readOffset;
        _readOffset = _ids.Count;
        return text.Length > prefix.Length ? text[prefix.Length..] : string.Empty;
    }

    /// <summary>Returns whatever is still held, decoded with replacement characters where it is incomplete.</summary>
    public string Flush()
    {
        if (_readOffset == _ids.Count)
        {
            return string.Empty;
        }

        var prefix = Decode(_prefixOffset, _readOffset);
        var text = Decode(_prefixOffset, _ids.Count);
        _prefixOffset = _readOffset = _ids.Count;
        return text.Length > prefix.Length ? text[prefix.Length..] : string.Empty;
    }

    private string Decode(int from, int to) =>
        to > from ? tokenizer.Decode(_ids.GetRange(from, to - from)) : string.Empty;
}
