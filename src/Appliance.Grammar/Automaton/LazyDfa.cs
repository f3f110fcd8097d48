namespace Appliance.Grammar.Automaton;

/// <summary>
/// The deterministic automaton of an <see cref="Nfa"/>, built state by state as matching reaches it (subset
/// construction over the 256 byte values). Only reached states are ever built, so a large schema costs what its
/// outputs visit. Not thread-safe: the owner serialises access.
/// </summary>
internal sealed class LazyDfa
{
    public const int Dead = -1;

    /// <summary>A bound on the subsets built for one schema: beyond it the schema is refused as too large.</summary>
    public const int MaxStates = 50_000;

    private readonly Nfa _nfa;
    private readonly int[] _nfaBytesToAccept;
    private readonly Dictionary<int[], int> _ids = new(StateSetComparer.Instance);
    private readonly List<DfaState> _states = [];

    public LazyDfa(Nfa nfa)
    {
        _nfa = nfa;
        _nfaBytesToAccept = nfa.BytesToAccept();
        Start = Intern(Closure([nfa.Start]));
    }

    public int Start { get; }

    public int StateCount => _states.Count;

    public bool IsAccepting(int state) => _states[state].Accepting;

    /// <summary>The fewest bytes from this state to a complete output.</summary>
    public int BytesToAccept(int state) => _states[state].BytesToAccept;

    /// <summary>Whether any byte leads on from this state (a complete output that cannot be extended has none).</summary>
    public bool HasMoves(int state) => Transitions(state).Any(next => next != Dead);

    public int Step(int state, byte value) => Transitions(state)[value];

    /// <summary>Where the bytes lead from <paramref name="state"/>, or <see cref="Dead"/>.</summary>
    public int Walk(int state, ReadOnlySpan<byte> bytes)
    {
        foreach (var value in bytes)
        {
            state = Step(state, value);
            if (state == Dead)
            {
                return Dead;
            }
        }

        return state;
    }

    /// <summary>Per-state data its owner caches (the vocabulary masks).</summary>
    public ref object? Tag(int state) => ref _states[state].Tag;

    private int[] Transitions(int state) => _states[state].Next ??= Expand(state);

    private int[] Expand(int state)
    {
        var buckets = new List<int>?[256];
        foreach (var member in _states[state].Members)
        {
            foreach (var (low, high, target) in _nfa.Moves(member))
            {
                for (var value = low; ; value++)
                {
                    (buckets[value] ??= []).Add(target);
                    if (value == high)
                    {
                        break;
                    }
                }
            }
        }

        // Most bytes of a state share a target set (every character inside a string): close each distinct set once.
        var closed = new Dictionary<int[], int>(StateSetComparer.Instance);
        var next = new int[256];
        for (var value = 0; value < 256; value++)
        {
            if (buckets[value] is not { } targets)
            {
                next[value] = Dead;
                continue;
            }

            var key = targets.Distinct().Order().ToArray();
            if (!closed.TryGetValue(key, out var id))
            {
                id = Intern(Closure(key));
                closed[key] = id;
            }

            next[value] = id;
        }

        return next;
    }

    private int[] Closure(IEnumerable<int> seeds)
    {
        var seen = new HashSet<int>();
        var stack = new Stack<int>();
        foreach (var seed in seeds)
        {
            if (seen.Add(seed))
            {
                stack.Push(seed);
            }
        }

        while (stack.TryPop(out var state))
        {
            foreach (var target in _nfa.EmptyMoves(state))
            {
                if (seen.Add(target))
                {
                    stack.Push(target);
                }
            }
        }

        // States with no byte moves add nothing to matching except acceptance: keeping them out merges equal subsets.
        return [.. seen.Where(s => s == _nfa.Accept || _nfa.Moves(s).Count > 0).Order()];
    }

    private int Intern(int[] members)
    {
        if (_ids.TryGetValue(members, out var id))
        {
            return id;
        }

        if (_states.Count >= MaxStates)
        {
            throw new GrammarTooLargeException($"matching the schema needed more than {MaxStates} automaton states");
        }

        var distance = int.MaxValue;
        foreach (var member in members)
        {
            distance = Math.Min(distance, _nfaBytesToAccept[member]);
        }

        id = _states.Count;
        _states.Add(new DfaState(members, Array.BinarySearch(members, _nfa.Accept) >= 0, distance));
        _ids[members] = id;
        return id;
    }

    private sealed class DfaState(int[] members, bool accepting, int bytesToAccept)
    {
        public int[] Members { get; } = members;

        public bool Accepting { get; } = accepting;

        public int BytesToAccept { get; } = bytesToAccept;

        public int[]? Next;

        public object? Tag;
    }

    private sealed class StateSetComparer : IEqualityComparer<int[]>
    {
        public static readonly StateSetComparer Instance = new();

        public bool Equals(int[]? x, int[]? y) => x.AsSpan().SequenceEqual(y);

        public int GetHashCode(int[] set)
        {
            var hash = new HashCode();
            foreach (var value in set)
            {
                hash.Add(value);
            }

            return hash.ToHashCode();
        }
    }
}
