namespace Appliance.Api.Guardrails;

/// <summary>
/// Words and phrases, found whole and regardless of case, through a tree of their characters walked forward from each
/// word start; a word that completes a phrase's word goes on, past one to three whitespace characters, into the tree
/// of the phrase's next words. One expression of every word would outgrow the linear-time matcher's limits; here a
/// place of the text costs at most the length of the longest phrase, however many words the list holds.
/// </summary>
internal sealed class WordListMatcher : ITextMatcher
{
    private const int MaxGap = 3;

    // One tree for the whole list: edges (node, upper-cased character) -> node. A node that ends a word of a phrase
    // points to that word's place (_words), which says whether a phrase ends there and where its next words start.
    private readonly Dictionary<(int Node, char Character), int> _edges = [];
    private readonly List<int> _wordAt = [-1, -1];
    private readonly List<bool> _ends = [];
    private readonly List<int> _nextRoot = [];

    // Words that begin with a letter or digit start a word of the text; others ("#tag") may start anywhere.
    private const int WordStartsRoot = 0;
    private const int AnywhereRoot = 1;

    public WordListMatcher(IEnumerable<string[]> phrases)
    {
        foreach (var phrase in phrases)
        {
            var root = IsWordCharacter(phrase[0][0]) ? WordStartsRoot : AnywhereRoot;
            for (var i = 0; i < phrase.Length; i++)
            {
                var word = WordNode(root, phrase[i]);
                _ends[word] |= i == phrase.Length - 1;
                if (i < phrase.Length - 1)
                {
                    if (_nextRoot[word] < 0)
                    {
                        _nextRoot[word] = NewNode();
                    }

                    root = _nextRoot[word];
                }
            }
        }
    }

    public IEnumerable<(int Start, int Length)> Find(string text, int startAt)
    {
        for (var at = startAt; at < text.Length; at++)
        {
            var end = Math.Max(at == 0 || !IsWordCharacter(text[at - 1]) ? Longest(WordStartsRoot, text, at) : -1, Longest(AnywhereRoot, text, at));
            if (end > at)
            {
                yield return (at, end - at);
                at = end - 1;
            }
        }
    }

    /// <summary>Where the longest phrase under <paramref name="root"/> that begins at <paramref name="at"/> ends, or -1.</summary>
    private int Longest(int root, string text, int at)
    {
        var best = -1;
        var node = root;
        for (var i = at; i < text.Length && _edges.TryGetValue((node, char.ToUpperInvariant(text[i])), out node); i++)
        {
            var word = _wordAt[node];
            var end = i + 1;
            // A word that ends with a letter or digit ends a word of the text there, or is no match.
            if (word < 0 || (end < text.Length && IsWordCharacter(text[i]) && IsWordCharacter(text[end])))
            {
                continue;
            }

            if (_ends[word])
            {
                best = Math.Max(best, end);
            }

            var gap = 0;
            while (end + gap < text.Length && gap <= MaxGap && char.IsWhiteSpace(text[end + gap]))
            {
                gap++;
            }

            // Words hold no whitespace, so of the words ending along this walk only the one before a space goes on.
            if (gap is > 0 and <= MaxGap && _nextRoot[word] >= 0)
            {
                best = Math.Max(best, Longest(_nextRoot[word], text, end + gap));
            }
        }

        return best;
    }

    /// <summary>The place of <paramref name="word"/> under <paramref name="root"/>, added if new.</summary>
    private int WordNode(int root, string word)
    {
        var node = root;
        foreach (var character in word)
        {
            var key = (node, char.ToUpperInvariant(character)); // the mapping OrdinalIgnoreCase compares with
            if (!_edges.TryGetValue(key, out var next))
            {
                _edges[key] = next = NewNode();
            }

            node = next;
        }

        if (_wordAt[node] < 0)
        {
            _wordAt[node] = _ends.Count;
            _ends.Add(false);
            _nextRoot.Add(-1);
        }

        return _wordAt[node];
    }

    private int NewNode()
    {
        _wordAt.Add(-1);
        return _wordAt.Count - 1;
    }

    /// <summary>
    /// What a regular expression's \b counts as part of a word: letters, combining marks, decimal digits, connector
    /// punctuation, and the zero-width joiners.
    /// </summary>
    private static bool IsWordCharacter(char c) =>
        ((0x4013F >> (int)char.GetUnicodeCategory(c)) & 1) != 0 || c is '\u200C' or '\u200D';
}
