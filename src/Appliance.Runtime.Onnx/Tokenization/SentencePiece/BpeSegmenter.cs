namespace Appliance.Runtime.Onnx.Tokenization.SentencePiece;

/// <summary>
/// SentencePiece's BPE encoding: start from characters (user-defined pieces stay whole and never merge), then keep
/// merging the adjacent pair whose joined text is the highest-scoring piece, the leftmost pair on a tie. A merge
/// into an unused piece is undone at the end, as sentencepiece does.
/// </summary>
/// <remarks>
/// This differs from Hugging Face's BPE (merge ranks over pre-tokenized words), which is why a tokenizer.model is
/// not run through a generic BPE: runs of spaces, for one, merge differently.
/// </remarks>
internal sealed class BpeSegmenter(PieceVocabulary vocabulary)
{
    public void Segment(string text, List<(int Start, int Length)> output)
    {
        var symbols = InitialSymbols(text);
        var agenda = new PriorityQueue<Candidate, Candidate>(CandidateOrder.Instance);
        var merged = new Dictionary<(int Start, int Length), ((int, int) Left, (int, int) Right)>();
        for (var i = 1; i < symbols.Count; i++)
        {
            Consider(text, symbols, i - 1, i, agenda);
        }

        while (agenda.TryDequeue(out var top, out _))
        {
            var left = symbols[top.Left];
            var right = symbols[top.Right];
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != top.Length || left.Next != top.Right)
            {
                continue; // one side already merged into something else
            }

            if (vocabulary.IsUnused(top.Id))
            {
                merged[(left.Start, top.Length)] = ((left.Start, left.Length), (right.Start, right.Length));
            }

            symbols[top.Left] = left with { Length = top.Length, Next = right.Next };
            symbols[top.Right] = right with { Length = 0 };
            if (right.Next >= 0)
            {
                symbols[right.Next] = symbols[right.Next] with { Previous = top.Left };
            }

            if (left.Previous >= 0)
            {
                Consider(text, symbols, left.Previous, top.Left, agenda);
            }

            if (right.Next >= 0)
            {
                Consider(text, symbols, top.Left, right.Next, agenda);
            }
        }

        for (var index = symbols.Count > 0 ? 0 : -1; index >= 0; index = symbols[index].Next)
        {
            Resegment(text, (symbols[index].Start, symbols[index].Length), merged, output);
        }
    }

    private List<Symbol> InitialSymbols(string text)
    {
        var symbols = new List<Symbol>(text.Length);
        var position = 0;
        while (position < text.Length)
        {
            var userDefined = vocabulary.UserDefinedPrefixLength(text.AsSpan(position));
            var length = userDefined > 0 ? userDefined : char.IsSurrogatePair(text, position) ? 2 : 1;
            symbols.Add(new Symbol(position, length, symbols.Count - 1, position + length < text.Length ? symbols.Count + 1 : -1, userDefined > 0));
            position += length;
        }

        return symbols;
    }

    private void Consider(string text, List<Symbol> symbols, int left, int right, PriorityQueue<Candidate, Candidate> agenda)
    {
        var (a, b) = (symbols[left], symbols[right]);
        if (a.Frozen || b.Frozen)
        {
            return;
        }

        var length = a.Length + b.Length;
        if (vocabulary.MergeableId(text.AsSpan(a.Start, length)) is { } id)
        {
            var candidate = new Candidate(left, right, length, id, vocabulary.Score(id));
            agenda.Enqueue(candidate, candidate);
        }
    }

    private void Resegment(string text, (int Start, int Length) piece, Dictionary<(int, int), ((int, int) Left, (int, int) Right)> merged, List<(int, int)> output)
    {
        if (merged.TryGetValue(piece, out var parts) && vocabulary.MergeableId(text.AsSpan(piece.Start, piece.Length)) is { } id && vocabulary.IsUnused(id))
        {
            Resegment(text, parts.Left, merged, output);
            Resegment(text, parts.Right, merged, output);
            return;
        }

        output.Add(piece);
    }

    private readonly record struct Symbol(int Start, int Length, int Previous, int Next, bool Frozen);

    private readonly record struct Candidate(int Left, int Right, int Length, int Id, float Score);

    /// <summary>Highest score first; on a tie the leftmost pair.</summary>
    private sealed class CandidateOrder : IComparer<Candidate>
    {
        public static readonly CandidateOrder Instance = new();

        public int Compare(Candidate x, Candidate y)
        {
            var byScore = y.Score.CompareTo(x.Score);
            return byScore != 0 ? byScore : x.Left.CompareTo(y.Left);
        }
    }
}
