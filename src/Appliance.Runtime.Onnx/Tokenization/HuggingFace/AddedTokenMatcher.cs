namespace Appliance.Runtime.Onnx.Tokenization.HuggingFace;

/// <summary>
/// Finds a tokenizer's added tokens (for example "&lt;|im_start|&gt;" or Gemma's "&lt;start_of_turn&gt;") in text, leftmost
/// and longest first as Hugging Face tokenizers does, so that the text between them is tokenised on its own.
/// </summary>
internal sealed class AddedTokenMatcher
{
    // Candidates by first character, longest first: Gemma 3 has 6,415 added tokens, so a single alternation regex
    // would be slow, while almost every position of ordinary text has no candidate at all.
    private readonly Dictionary<char, (string Text, int Id)[]> _byFirstChar;
    private readonly IReadOnlyDictionary<int, (bool Left, bool Right)> _strips;

    /// <param name="strips">
    /// Tokens (by id) that take the whitespace before (lstrip) or after (rstrip) them with them, as tokenizer.json's
    /// added_tokens say: Phi-3's "&lt;|user|&gt;" swallows the newline after it, so the model never sees that newline.
    /// </param>
    public AddedTokenMatcher(IReadOnlyDictionary<string, int> tokens, IReadOnlyDictionary<int, (bool Left, bool Right)>? strips = null)
    {
        _strips = strips ?? new Dictionary<int, (bool, bool)>();
        _byFirstChar = tokens
            .Where(token => token.Key.Length > 0)
            .GroupBy(token => token.Key[0])
            .ToDictionary(group => group.Key, group => group.OrderByDescending(t => t.Key.Length).Select(t => (t.Key, t.Value)).ToArray());
    }

    /// <summary>The text as consecutive segments; a segment with an id is an added token, one without is plain text.</summary>
    public List<(int Offset, int Length, int? Id)> Split(ReadOnlySpan<char> text)
    {
        var segments = new List<(int, int, int?)>();
        var plainStart = 0;
        var i = 0;
        while (i < text.Length)
        {
            if (Match(text[i..]) is { } match)
            {
                var (left, right) = _strips.GetValueOrDefault(match.Id);
                var plainEnd = i;
                while (left && plainEnd > plainStart && char.IsWhiteSpace(text[plainEnd - 1]))
                {
                    plainEnd--;
                }

                if (plainEnd > plainStart)
                {
                    segments.Add((plainStart, plainEnd - plainStart, null));
                }

                segments.Add((i, match.Length, match.Id));
                i += match.Length;
                while (right && i < text.Length && char.IsWhiteSpace(text[i]))
                {
                    i++;
                }

                plainStart = i;
            }
            else
            {
                i++;
            }
        }

        if (text.Length > plainStart)
        {
            segments.Add((plainStart, text.Length - plainStart, null));
        }

        return segments;
    }

    private (int Length, int Id)? Match(ReadOnlySpan<char> rest)
    {
        if (!_byFirstChar.TryGetValue(rest[0], out var candidates))
        {
            return null;
        }

        foreach (var (text, id) in candidates)
        {
            if (rest.StartsWith(text, StringComparison.Ordinal))
            {
                return (text.Length, id);
            }
        }

        return null;
    }
}
