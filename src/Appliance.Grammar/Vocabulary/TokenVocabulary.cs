using Appliance.Engine;

namespace Appliance.Grammar.Vocabulary;

/// <summary>
/// The model's tokens as bytes, in a trie numbered in pre-order: a node's subtree is the id range up to its
/// <see cref="SubtreeEnd"/>, so a walk that rejects a prefix skips every token under it in one jump, and the walk
/// itself is a linear pass over arrays.
/// </summary>
internal sealed class TokenVocabulary
{
    private readonly byte[]?[] _bytes;
    private readonly byte[] _label;
    private readonly int[] _depth;
    private readonly int[] _subtreeEnd;
    private readonly int[] _tokensStart; // tokens ending at node n: _tokens[_tokensStart[n] .. _tokensStart[n + 1]]
    private readonly int[] _tokens;

    private TokenVocabulary(int size, byte[]?[] bytes, byte[] label, int[] depth, int[] subtreeEnd, int[] tokensStart, int[] tokens)
    {
        Size = size;
        _bytes = bytes;
        _label = label;
        _depth = depth;
        _subtreeEnd = subtreeEnd;
        _tokensStart = tokensStart;
        _tokens = tokens;
        MaxDepth = depth.Length == 0 ? 0 : depth.Max();
    }

    /// <summary>The width of the model's logits (may exceed the tokenizer's ids: padding).</summary>
    public int Size { get; }

    public int NodeCount => _label.Length;

    public int MaxDepth { get; }

    /// <summary>Tokens that are text (the others are never allowed inside the output).</summary>
    public int TextTokens => _tokens.Length;

    public byte[]? Bytes(int token) => token < _bytes.Length ? _bytes[token] : null;

    public byte Label(int node) => _label[node];

    public int Depth(int node) => _depth[node];

    public int SubtreeEnd(int node) => _subtreeEnd[node];

    public ReadOnlySpan<int> TokensAt(int node) => _tokens.AsSpan(_tokensStart[node], _tokensStart[node + 1] - _tokensStart[node]);

    /// <summary>
    /// The tokenizer's text tokens; special tokens only where their text is one of <paramref name="markers"/> (a
    /// tool-call marker the output writes as that one token).
    /// </summary>
    public static TokenVocabulary From(ITokenizer tokenizer, int size, IReadOnlyCollection<string>? markers = null)
    {
        var bytes = new byte[]?[size];
        for (var id = 0; id < size; id++)
        {
            try
            {
                bytes[id] = tokenizer.TokenBytes(id) is { Length: > 0 } text ? text
                    : markers is { Count: > 0 } && tokenizer.Decode([id]) is { Length: > 0 } special && markers.Contains(special) ? System.Text.Encoding.UTF8.GetBytes(special)
                    : null;
            }
            catch (Exception exception) when (exception is ArgumentException or KeyNotFoundException or IndexOutOfRangeException)
            {
                bytes[id] = null; // an id past the tokenizer's own (the model pads its vocabulary)
            }
        }

        return From(bytes, size);
    }

    public static TokenVocabulary From(byte[]?[] bytes, int size)
    {
        var order = Enumerable.Range(0, bytes.Length).Where(id => bytes[id] is not null).ToArray();
        System.Array.Sort(order, (a, b) => bytes[a].AsSpan().SequenceCompareTo(bytes[b]));

        // Node 0 is the root (the empty prefix); nodes are numbered as a depth-first walk meets them.
        var label = new List<byte> { 0 };
        var depth = new List<int> { 0 };
        var subtreeEnd = new List<int> { 0 };
        var owners = new List<(int Node, int Token)>();
        var path = new List<int> { 0 };
        byte[] previous = [];
        foreach (var id in order)
        {
            var token = bytes[id]!;
            var common = token.AsSpan().CommonPrefixLength(previous);
            while (path.Count > common + 1)
            {
                subtreeEnd[path[^1]] = label.Count;
                path.RemoveAt(path.Count - 1);
            }

            for (var position = common; position < token.Length; position++)
            {
                path.Add(label.Count);
                label.Add(token[position]);
                depth.Add(position + 1);
                subtreeEnd.Add(0);
            }

            owners.Add((path[token.Length], id));
            previous = token;
        }

        foreach (var node in path)
        {
            subtreeEnd[node] = label.Count;
        }

        var tokensStart = new int[label.Count + 1];
        foreach (var (node, _) in owners)
        {
            tokensStart[node + 1]++;
        }

        for (var node = 0; node < label.Count; node++)
        {
            tokensStart[node + 1] += tokensStart[node];
        }

        var tokens = new int[owners.Count];
        var fill = (int[])tokensStart.Clone();
        foreach (var (node, token) in owners)
        {
            tokens[fill[node]++] = token;
        }

        return new TokenVocabulary(size, bytes, [.. label], [.. depth], [.. subtreeEnd], tokensStart, tokens);
    }
}
