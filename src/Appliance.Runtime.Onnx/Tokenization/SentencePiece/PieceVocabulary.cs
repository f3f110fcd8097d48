using System.Text;

namespace Appliance.Runtime.Onnx.Tokenization.SentencePiece;

/// <summary>
/// The pieces arranged for encoding. As in sentencepiece, only normal, user-defined and unused pieces can be
/// produced by segmentation; unknown, control and byte pieces are reachable by id only.
/// </summary>
internal sealed class PieceVocabulary
{
    private readonly Dictionary<string, int> _segmentable = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly Dictionary<char, string[]> _userDefinedByFirstChar;
    private readonly IReadOnlyList<Piece> _pieces;

    public PieceVocabulary(IReadOnlyList<Piece> pieces)
    {
        _pieces = pieces;
        for (var id = 0; id < pieces.Count; id++)
        {
            if (pieces[id].Type is PieceType.Normal or PieceType.UserDefined or PieceType.Unused && pieces[id].Text.Length > 0)
            {
                _segmentable.TryAdd(pieces[id].Text, id);
            }
        }

        _lookup = _segmentable.GetAlternateLookup<ReadOnlySpan<char>>();
        _userDefinedByFirstChar = pieces
            .Where(piece => piece.Type == PieceType.UserDefined && piece.Text.Length > 0)
            .GroupBy(piece => piece.Text[0])
            .ToDictionary(group => group.Key, group => group.Select(piece => piece.Text).OrderByDescending(text => text.Length).ToArray());

        var normalScores = pieces.Where(piece => piece.Type == PieceType.Normal).Select(piece => piece.Score).ToList();
        MinimumScore = normalScores.Count > 0 ? normalScores.Min() : 0f;
        // sentencepiece starts its maximum at FLT_MIN (the smallest positive normal float), not at the lowest value.
        MaximumScore = normalScores.Append(1.17549435E-38f).Max();
        Trie = new PieceTrie(_segmentable);
    }

    public float MinimumScore { get; }

    public float MaximumScore { get; }

    public PieceTrie Trie { get; }

    /// <summary>The id of a piece segmentation may produce, or null.</summary>
    public int? MergeableId(ReadOnlySpan<char> text) => _lookup.TryGetValue(text, out var id) ? id : null;

    public float Score(int id) => _pieces[id].Score;

    public bool IsUnused(int id) => _pieces[id].Type == PieceType.Unused;

    public bool IsUserDefined(int id) => _pieces[id].Type == PieceType.UserDefined;

    /// <summary>The length of the longest user-defined piece the text starts with, or 0.</summary>
    public int UserDefinedPrefixLength(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty || !_userDefinedByFirstChar.TryGetValue(text[0], out var candidates))
        {
            return 0;
        }

        foreach (var candidate in candidates)
        {
            if (text.StartsWith(candidate, StringComparison.Ordinal))
            {
                return candidate.Length;
            }
        }

        return 0;
    }

    /// <summary>The UTF-8 length sentencepiece scores user-defined pieces by.</summary>
    public static int Utf8Length(ReadOnlySpan<char> text) => Encoding.UTF8.GetByteCount(text);
}

/// <summary>A character trie over the segmentable pieces, for the unigram lattice's prefix search.</summary>
internal sealed class PieceTrie
{
    private readonly Dictionary<(int Node, char Next), int> _edges = [];
    private readonly List<int> _idAtNode = [-1];

    public PieceTrie(IReadOnlyDictionary<string, int> pieces)
    {
        foreach (var (text, id) in pieces)
        {
            var node = 0;
            foreach (var c in text)
            {
                if (!_edges.TryGetValue((node, c), out var child))
                {
                    child = _idAtNode.Count;
                    _idAtNode.Add(-1);
                    _edges[(node, c)] = child;
                }

                node = child;
            }

            _idAtNode[node] = id;
        }
    }

    /// <summary>Every piece the text starts with, shortest first, as (length, id).</summary>
    public void PrefixMatches(ReadOnlySpan<char> text, List<(int Length, int Id)> matches)
    {
        matches.Clear();
        var node = 0;
        for (var i = 0; i < text.Length && _edges.TryGetValue((node, text[i]), out node); i++)
        {
            if (_idAtNode[node] >= 0)
            {
                matches.Add((i + 1, _idAtNode[node]));
            }
        }
    }
}
