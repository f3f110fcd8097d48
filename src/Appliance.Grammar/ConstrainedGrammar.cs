using Appliance.Engine.Sampling;
using Appliance.Grammar.Automaton;
using Appliance.Grammar.Vocabulary;

namespace Appliance.Grammar;

/// <summary>
/// A compiled language matched against one model's vocabulary. For each automaton state a sequence reaches, a table
/// over the vocabulary says which tokens may come next and how many bytes each would leave before the output can be
/// complete; it is computed once (a walk of the vocabulary trie that drops every prefix the automaton rejects) and
/// shared by every sequence and request with the same schema. Safe to use from several engine loops.
/// </summary>
internal sealed class ConstrainedGrammar : ITokenConstraint
{
    /// <summary>The most table memory one grammar keeps; states past it are walked again at each visit.</summary>
    public const long MaxTableBytes = 64L << 20;

    private readonly Lock _gate = new();
    private readonly LazyDfa _dfa;
    private readonly TokenVocabulary _vocabulary;
    private long _tableBytes;

    public ConstrainedGrammar(Nfa nfa, TokenVocabulary vocabulary)
    {
        _dfa = new LazyDfa(nfa);
        _vocabulary = vocabulary;
    }

    /// <summary>Automaton states built so far (for tests and the benchmark).</summary>
    public int States
    {
        get
        {
            lock (_gate)
            {
                return _dfa.StateCount;
            }
        }
    }

    /// <summary>Whether the automaton reached its bound: outputs needing new states end early, so the cache builds a fresh one.</summary>
    public bool Exhausted { get; private set; }

    /// <summary>Called by a sequence that met the bound.</summary>
    public void MarkExhausted() => Exhausted = true;

    public ITokenConstraintState Start()
    {
        lock (_gate)
        {
            return new JsonConstraintState(this, _dfa.Start);
        }
    }

    public byte[]? BytesOf(int token) => _vocabulary.Bytes(token);

    public int Walk(int state, ReadOnlySpan<byte> bytes)
    {
        lock (_gate)
        {
            return _dfa.Walk(state, bytes);
        }
    }

    public bool IsAccepting(int state)
    {
        lock (_gate)
        {
            return _dfa.IsAccepting(state);
        }
    }

    /// <summary>The state's table: per token, forbidden or the bytes still needed after it.</summary>
    public TokenTable TableFor(int state)
    {
        lock (_gate)
        {
            if (_dfa.Tag(state) is TokenTable known)
            {
                return known;
            }

            var table = TokenTable.From(Compute(state));
            if (_tableBytes + table.Bytes <= MaxTableBytes)
            {
                _dfa.Tag(state) = table;
                _tableBytes += table.Bytes;
            }

            return table;
        }
    }

    /// <summary>Memory held by the cached tables.</summary>
    public long TableBytes
    {
        get
        {
            lock (_gate)
            {
                return _tableBytes;
            }
        }
    }

    private byte[] Compute(int state)
    {
        var table = new byte[_vocabulary.Size];
        System.Array.Fill(table, TokenTable.Forbidden);
        var stateAtDepth = new int[_vocabulary.MaxDepth + 1];
        stateAtDepth[0] = state;
        var node = 1;
        while (node < _vocabulary.NodeCount)
        {
            var depth = _vocabulary.Depth(node);
            var next = _dfa.Step(stateAtDepth[depth - 1], _vocabulary.Label(node));
            if (next == LazyDfa.Dead)
            {
                node = _vocabulary.SubtreeEnd(node);
                continue;
            }

            stateAtDepth[depth] = next;
            var remaining = _dfa.BytesToAccept(next);
            if (remaining != int.MaxValue)
            {
                var value = (byte)Math.Min(remaining, TokenTable.Far);
                foreach (var token in _vocabulary.TokensAt(node))
                {
                    table[token] = value;
                }
            }

            node++;
        }

        return table;
    }
}
