namespace Appliance.Api.Guardrails;

/// <summary>
/// Words and phrases, found whole and regardless of case, through a tree of their words: each word start of the text
/// is looked up in a table, then each following word in the table under it. As fast with 10,000 words as with ten,
/// where one expression of every word outgrows the linear-time matcher's limits, and no text makes it slow: at a
/// place, one path through the tree at most can go on. A phrase's words may be up to three whitespace characters apart.
/// </summary>
internal sealed class WordListMatcher : ITextMatcher
{
    private const int MaxGap = 3;

    // Words that begin with a letter or digit start a word of the text; others ("#tag") may start anywhere.
    private readonly Level _wordStarts = new();
    private readonly Level _anywhere = new();

    public WordListMatcher(IEnumerable<string[]> phrases)
    {
        foreach (var phrase in phrases)
        {
            var level = IsWordCharacter(phrase[0][0]) ? _wordStarts : _anywhere;
            for (var i = 0; i < phrase.Length; i++)
            {
                var node = level.Add(phrase[i]);
                node.Ends |= i == phrase.Length - 1;
                level = node.Next;
            }
        }

        _wordStarts.Seal();
        _anywhere.Seal();
    }

    public IEnumerable<(int Start, int Length)> Find(string text, int startAt)
    {
        for (var at = startAt; at < text.Length; at++)
        {
            if (char.IsWhiteSpace(text[at]))
            {
                continue; // no word starts with a space
            }

            var wordStart = at == 0 || !IsWordCharacter(text[at - 1]);
            var end = Math.Max(wordStart ? Longest(_wordStarts, text, at) : -1, Longest(_anywhere, text, at));
            if (end > at)
            {
                yield return (at, end - at);
                at = end - 1;
            }
        }
    }

    /// <summary>Where the longest phrase of <paramref name="level"/> that begins at <paramref name="at"/> ends, or -1.</summary>
    private static int Longest(Level level, string text, int at)
    {
        var best = -1;
        foreach (var length in level.Lengths)
        {
            var end = at + length;
            // A word that ends with a letter or digit ends a word of the text: where the text's word goes on, no word
            // of this length can match, so most lengths cost no lookup.
            if (end > text.Length || (end < text.Length && IsWordCharacter(text[end - 1]) && IsWordCharacter(text[end]))
                || !level.Lookup.TryGetValue(text.AsSpan(at, length), out var node))
            {
                continue;
            }

            if (node.Ends && end > best)
            {
                best = end;
            }

            // Only a word followed by whitespace can go on to the next word of a phrase: one length at most.
            var gap = 0;
            while (end + gap < text.Length && gap <= MaxGap && char.IsWhiteSpace(text[end + gap]))
            {
                gap++;
            }

            if (gap is > 0 and <= MaxGap && node.Next.Lengths.Length > 0 && Longest(node.Next, text, end + gap) is var further && further > best)
            {
                best = further;
            }
        }

        return best;
    }

    /// <summary>
    /// What a regular expression's \b counts as part of a word: letters, combining marks, decimal digits, connector
    /// punctuation, and the zero-width joiners.
    /// </summary>
    private static bool IsWordCharacter(char c) =>
        ((0x4013F >> (int)char.GetUnicodeCategory(c)) & 1) != 0 || c is '\u200C' or '\u200D';

    /// <summary>The words that may come at one place of a phrase, by their text regardless of case.</summary>
    private sealed class Level
    {
        private readonly Dictionary<string, Node> _words = new(StringComparer.OrdinalIgnoreCase);

        public int[] Lengths { get; private set; } = [];

        public Dictionary<string, Node>.AlternateLookup<ReadOnlySpan<char>> Lookup { get; private set; }

        public Node Add(string word)
        {
            if (!_words.TryGetValue(word, out var node))
            {
                _words[word] = node = new Node();
            }

            return node;
        }

        public void Seal()
        {
            Lookup = _words.GetAlternateLookup<ReadOnlySpan<char>>();
            Lengths = [.. _words.Keys.Select(k => k.Length).Distinct().OrderDescending()];
            foreach (var node in _words.Values)
            {
                node.Next.Seal();
            }
        }
    }

    private sealed class Node
    {
        public bool Ends { get; set; }

        public Level Next { get; } = new();
    }
}
