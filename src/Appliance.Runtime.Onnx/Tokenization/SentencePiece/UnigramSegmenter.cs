namespace Appliance.Runtime.Onnx.Tokenization.SentencePiece;

/// <summary>
/// SentencePiece's unigram encoding: the best-scoring path through every way of cutting the text into pieces
/// (Viterbi). A character no piece starts with costs the lowest piece score less 10 and comes out unknown;
/// user-defined pieces score high enough to win. Scores add in single precision and the first best path found is
/// kept, as in sentencepiece, so ties resolve the same way.
/// </summary>
internal sealed class UnigramSegmenter(PieceVocabulary vocabulary)
{
    private const float UnknownPenalty = 10f;

    /// <summary>Appends the pieces as (start, length, id); id is -1 for an unknown character.</summary>
    public void Segment(string text, List<(int Start, int Length, int Id)> output)
    {
        var bestScore = new float[text.Length + 1];
        var bestStart = new int[text.Length + 1];
        var bestId = new int[text.Length + 1];
        Array.Fill(bestStart, -1);
        var unknownScore = vocabulary.MinimumScore - UnknownPenalty;
        var matches = new List<(int Length, int Id)>();
        for (var start = 0; start < text.Length;)
        {
            var characterLength = char.IsSurrogatePair(text, start) ? 2 : 1;
            var scoreHere = bestScore[start];
            var hasSingleCharacter = false;
            vocabulary.Trie.PrefixMatches(text.AsSpan(start), matches);
            foreach (var (length, id) in matches)
            {
                if (vocabulary.IsUnused(id))
                {
                    continue;
                }

                // As sentencepiece: length times the top score in float, less 0.1 in double, stored as a float.
                var score = vocabulary.IsUserDefined(id)
                    ? (float)((double)(PieceVocabulary.Utf8Length(text.AsSpan(start, length)) * vocabulary.MaximumScore) - 0.1)
                    : vocabulary.Score(id);
                Offer(start + length, start, id, score + scoreHere);
                hasSingleCharacter |= length == characterLength;
            }

            if (!hasSingleCharacter)
            {
                Offer(start + characterLength, start, -1, unknownScore + scoreHere);
            }

            start += characterLength;
        }

        var pieces = new Stack<(int, int, int)>();
        for (var end = text.Length; end > 0; end = bestStart[end])
        {
            pieces.Push((bestStart[end], end - bestStart[end], bestId[end]));
        }

        output.AddRange(pieces);

        void Offer(int end, int start, int id, float score)
        {
            if (bestStart[end] < 0 || score > bestScore[end])
            {
                bestScore[end] = score;
                bestStart[end] = start;
                bestId[end] = id;
            }
        }
    }
}
