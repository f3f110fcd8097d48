namespace Appliance.Runtime.Onnx.Tokenization.HuggingFace;

/// <summary>
/// GPT-2's byte-level alphabet: each byte is written as one printable character in the vocabulary (printable Latin-1
/// bytes as themselves, the others as U+0100 onwards in byte order). Undoing it gives a token's bytes.
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly Dictionary<char, byte> ByteOfChar = Build();
    private static readonly char[] CharOfByte = [.. ByteOfChar.OrderBy(pair => pair.Value).Select(pair => pair.Key)];

    /// <summary>
    /// Writes text as the vocabulary does (its UTF-8 bytes, each as its alphabet character) into
    /// <paramref name="destination"/>; false when it does not fit.
    /// </summary>
    public static bool TryMap(ReadOnlySpan<char> text, Span<char> destination, out int written)
    {
        written = 0;
        Span<byte> bytes = stackalloc byte[4];
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] < 0x80 && written < destination.Length)
            {
                destination[written++] = CharOfByte[text[i]];
                continue;
            }

            // A pair is one character of four bytes; a lone surrogate becomes U+FFFD's three, as when the text is encoded whole.
            var length = i + 1 < text.Length && char.IsSurrogatePair(text[i], text[i + 1])
                ? System.Text.Encoding.UTF8.GetBytes(text.Slice(i++, 2), bytes)
                : System.Text.Encoding.UTF8.GetBytes(text.Slice(i, 1), bytes);
            if (written + length > destination.Length)
            {
                return false;
            }

            for (var b = 0; b < length; b++)
            {
                destination[written++] = CharOfByte[bytes[b]];
            }
        }

        return true;
    }

    /// <summary>Each id's bytes (null for ids not in the vocabulary, in <paramref name="excluded"/>, or not in the alphabet).</summary>
    public static byte[]?[] BytesOf(IReadOnlyDictionary<string, int> vocabulary, IReadOnlySet<int> excluded)
    {
        var result = new byte[]?[vocabulary.Count == 0 ? 0 : vocabulary.Values.Max() + 1];
        foreach (var (text, id) in vocabulary)
        {
            if (id < 0 || excluded.Contains(id))
            {
                continue;
            }

            var bytes = new byte[text.Length];
            var valid = true;
            for (var i = 0; i < text.Length && valid; i++)
            {
                valid = ByteOfChar.TryGetValue(text[i], out bytes[i]);
            }

            result[id] = valid ? bytes : null;
        }

        return result;
    }

    private static Dictionary<char, byte> Build()
    {
        var map = new Dictionary<char, byte>();
        var next = 256;
        for (var value = 0; value < 256; value++)
        {
            var printable = value is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[(char)(printable ? value : next++)] = (byte)value;
        }

        return map;
    }
}
