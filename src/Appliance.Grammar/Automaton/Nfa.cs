namespace Appliance.Grammar.Automaton;

/// <summary>
/// A nondeterministic automaton over bytes under construction: states joined by empty moves and byte-range moves, one
/// start and one accepting state. Languages write themselves into it (<see cref="Language.Lang.Emit"/>).
/// </summary>
internal sealed class Nfa
{
    /// <summary>More states than this is a schema too large to serve (it would also be too slow to match).</summary>
    public const int MaxStates = 400_000;

    private readonly List<List<int>> _empty = [];
    private readonly List<List<(byte Low, byte High, int Target)>> _moves = [];

    public Nfa()
    {
        Start = NewState();
    }

    public int Start { get; }

    /// <summary>The accepting state; set once the language is written.</summary>
    public int Accept { get; set; } = -1;

    public int Count => _empty.Count;

    public int NewState()
    {
        if (_empty.Count >= MaxStates)
        {
            throw new GrammarTooLargeException($"the schema needs more than {MaxStates} automaton states");
        }

        _empty.Add([]);
        _moves.Add([]);
        return _empty.Count - 1;
    }

    public void Empty(int from, int to) => _empty[from].Add(to);

    public void Move(int from, byte low, byte high, int to) => _moves[from].Add((low, high, to));

    public IReadOnlyList<int> EmptyMoves(int state) => _empty[state];

    public IReadOnlyList<(byte Low, byte High, int Target)> Moves(int state) => _moves[state];

    /// <summary>
    /// For each state, the fewest bytes that lead from it to acceptance (int.MaxValue where none do): what a sequence
    /// that must finish soon may still afford. A breadth-first search backwards, empty moves costing nothing.
    /// </summary>
    public int[] BytesToAccept()
    {
        var reverseEmpty = new List<int>[Count];
        var reverseMoves = new List<int>[Count];
        for (var state = 0; state < Count; state++)
        {
            reverseEmpty[state] = [];
            reverseMoves[state] = [];
        }

        for (var state = 0; state < Count; state++)
        {
            foreach (var target in _empty[state])
            {
                reverseEmpty[target].Add(state);
            }

            foreach (var (_, _, target) in _moves[state])
            {
                reverseMoves[target].Add(state);
            }
        }

        var distance = new int[Count];
        Array.Fill(distance, int.MaxValue);
        var queue = new LinkedList<int>();
        distance[Accept] = 0;
        queue.AddFirst(Accept);
        while (queue.First is { } node)
        {
            queue.RemoveFirst();
            var state = node.Value;
            foreach (var previous in reverseEmpty[state])
            {
                if (distance[state] < distance[previous])
                {
                    distance[previous] = distance[state];
                    queue.AddFirst(previous);
                }
            }

            foreach (var previous in reverseMoves[state])
            {
                if (distance[state] + 1 < distance[previous])
                {
                    distance[previous] = distance[state] + 1;
                    queue.AddLast(previous);
                }
            }
        }

        return distance;
    }
}
