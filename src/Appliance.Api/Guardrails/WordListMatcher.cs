namespace Appliance.Api.Guardrails;

/// <summary>
/// Words and phrases, found whole and regardless of case, by looking each word start up in a table: as fast with
/// 10,000 words as with ten, where one expression of every word would outgrow the linear-time matcher's limits.
/// A phrase's words may be up to three whitespace characters apart (a line break, two spaces).
/// </summary>
internal sealed class WordListMatcher : ITextMatcher
{
    private const int MaxGap = 3;

    // Phrases by their first word; each list longest phrase first, so the longest match at a place wins.
    private readonly Dictionary<string, List<string[]>> _byFirstWord = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, List<string[]>>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly int[] _firstWordLengths;
    private readonly bool _someStartWithoutLetter; // "#secret", "-x": such a phrase may start inside a word

    public WordListMatcher(IEnumerable<string[]> phrases)
    {
        foreach (var phrase in phrases.OrderByDescending(p => p.Sum(w => w.Length)))
        {
            if (!_byFirstWord.TryGetValue(phrase[0], out var list))
            {
                _byFirstWord[phrase[0]] = list = [];
            }

            list.Add(phrase);
        }

        _lookup = _byFirstWord.GetAlternateLookup<ReadOnlySpan<char>>();
        _firstWordLengths = [.. _byFirstWord.Keys.Select(k => k.Length).Distinct().OrderDescending()];
        _someStartWithoutLetter = _byFirstWord.Keys.Any(k => !IsWordCharacter(k[0]));
    }

    public IEnumerable<(int Start, int Length)> Find(string text, int startAt)
    {
        for (var at = startAt; at < text.Length; at++)
        {
            if (MatchAt(text, at) is { } length)
            {
                yield return (at, length);
                at += length - 1;
            }
        }
    }

    private int? MatchAt(string text, int at)
    {
        // A word that begins with a letter or digit starts a word of the text, not the middle of one.
        var wordStart = at == 0 || !IsWordCharacter(text[at - 1]);
        if (!wordStart && !_someStartWithoutLetter)
        {
            return null;
        }

        foreach (var length in _firstWordLengths)
        {
            if (at + length > text.Length || !_lookup.TryGetValue(text.AsSpan(at, length), out var phrases))
            {
                continue;
            }

            foreach (var phrase in phrases)
            {
                if ((wordStart || !IsWordCharacter(phrase[0][0])) && Rest(text, at + length, phrase) is { } end)
                {
                    return end - at;
                }
            }
        }

        return null;
    }

    /// <summary>Where the phrase ends when its words after the first follow at <paramref name="at"/>, or null.</summary>
    private static int? Rest(string text, int at, string[] phrase)
    {
        for (var i = 1; i < phrase.Length; i++)
        {
            var gap = 0;
            while (at + gap < text.Length && gap <= MaxGap && char.IsWhiteSpace(text[at + gap]))
            {
                gap++;
            }

            if (gap is 0 or > MaxGap || at + gap + phrase[i].Length > text.Length
                || !text.AsSpan(at + gap, phrase[i].Length).Equals(phrase[i], StringComparison.OrdinalIgnoreCase))
            {
                return null;
            }

            at += gap + phrase[i].Length;
        }

        // ... and ends a word of the text where it ends with a letter or digit.
        return at < text.Length && IsWordCharacter(phrase[^1][^1]) && IsWordCharacter(text[at]) ? null : at;
    }

    /// <summary>What a regular expression's \b counts as part of a word.</summary>
    private static bool IsWordCharacter(char c) => char.IsLetterOrDigit(c) || c == '_';
}
