namespace Appliance.Engine.Speculation;

/// <summary>
/// Prompt-lookup drafting (no draft model): the tokens that followed the latest earlier occurrence of the sequence's
/// last n tokens, in its own prompt and output, are proposed as what comes next. Copy-heavy work (editing or
/// summarising a given text, code edits, repeating a document's names) repeats such runs; open-ended text rarely does.
/// </summary>
internal static class PromptLookup
{
    /// <summary>
    /// Writes up to drafts.Length proposed tokens and returns how many; longer n-grams (up to
    /// <paramref name="maxNgram"/>) are tried first, down to <paramref name="minNgram"/>.
    /// </summary>
    public static int Propose(IReadOnlyList<int> tokens, int maxNgram, int minNgram, Span<int> drafts)
    {
        var length = tokens.Count;
        for (var n = Math.Min(maxNgram, length - 1); n >= minNgram; n--)
        {
            // The most recent earlier occurrence: what the text did last time is the best guess for this time.
            for (var start = length - n - 1; start >= 0; start--)
            {
                if (Matches(tokens, start, length - n, n))
                {
                    var from = start + n;
                    var count = Math.Min(drafts.Length, length - from);
                    for (var i = 0; i < count; i++)
                    {
                        drafts[i] = tokens[from + i];
                    }

                    return count;
                }
            }
        }

        return 0;
    }

    private static bool Matches(IReadOnlyList<int> tokens, int a, int b, int n)
    {
        for (var i = 0; i < n; i++)
        {
            if (tokens[a + i] != tokens[b + i])
            {
                return false;
            }
        }

        return true;
    }
}
