using System.Buffers;

namespace Appliance.Engine.Output;

/// <summary>
/// Streams text from tokens without ever emitting a broken character: ids that end inside a multi-byte
/// character are held until the character is complete.
/// </summary>
public sealed class IncrementalDetokenizer(ITokenizer tokenizer)
{
    // A UTF-8 character spans at most 4 bytes; byte-level vocabularies can split it over as many tokens.
    // Beyond this many held ids the bytes can never form a character, so they are flushed as U+FFFD.
    private const int MaxHeldTokens = 8;

    private readonly List<int> _pending = [];
    private char[] _buffer = new char[64];

    /// <summary>Adds one token and returns the text that is now complete (possibly empty).</summary>
    public string Push(int tokenId)
    {
        _pending.Add(tokenId);
        var text = DecodeComplete();
        if (_pending.Count > MaxHeldTokens)
        {
            text += Flush();
        }

        return text;
    }

    /// <summary>Returns whatever is still held, decoded with replacement characters where it is incomplete.</summary>
    public string Flush()
    {
        if (_pending.Count == 0)
        {
            return string.Empty;
        }

        var text = tokenizer.Decode(_pending);
        _pending.Clear();
        return text;
    }

    private string DecodeComplete()
    {
        var output = string.Empty;
        while (_pending.Count > 0)
        {
            var status = tokenizer.Decode(_pending, _buffer, out var consumed, out var written);
            if (written > 0)
            {
                output += new string(_buffer, 0, written);
            }

            if (consumed > 0)
            {
                _pending.RemoveRange(0, consumed);
            }

            if (status == OperationStatus.DestinationTooSmall)
            {
                if (consumed == 0)
                {
                    _buffer = new char[_buffer.Length * 2];
                }

                continue;
            }

            break;
        }

        return output;
    }
}
