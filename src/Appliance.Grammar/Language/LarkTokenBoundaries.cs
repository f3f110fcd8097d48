using Appliance.Grammar.Automaton;

namespace Appliance.Grammar.Language;

/// <summary>
/// Where, in a Lark grammar's rules, one token may run into the next. Lark's lexer takes each terminal's match whole
/// (a regular expression matches as far as it can), so a text the rules derive can still fail to parse: with
/// <c>NAME "FROM"</c> and names of letters, "xFROM" is one name to Lark. Between two such tokens the grammar's ignored
/// text (%ignore) is made required; with nothing ignored, the grammar is refused (<see cref="LarkGrammar"/> decides).
/// The check is by bytes: a token that, once complete, could go on with a byte the next one may start with.
/// </summary>
/// <param name="rawToken">A token's language as UTF-8 (tokens are keyed by their part of the grammar).</param>
internal sealed class LarkTokenBoundaries(Func<object, Lang> rawToken)
{
    /// <summary>The most automaton states explored per token (terminals are small; a larger one counts as running on).</summary>
    private const int MaxStates = 4096;

    private readonly Dictionary<object, (LazyDfa Dfa, List<int> Accepting, bool Truncated)> _tokens = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<object, bool[]> _firstBytes = new(ReferenceEqualityComparer.Instance);

    /// <summary>Whether a complete <paramref name="before"/> token could go on with a byte that <paramref name="after"/> may start with.</summary>
    public bool RunsInto(object before, object after)
    {
        var (dfa, accepting, truncated) = Explored(before);
        if (truncated)
        {
            return true;
        }

        var first = FirstBytes(after);
        foreach (var state in accepting)
        {
            for (var b = 0; b < 256; b++)
            {
                if (first[b] && dfa.Step(state, (byte)b) != LazyDfa.Dead)
                {
                    return true;
                }
            }
        }

        return false;
    }

    private bool[] FirstBytes(object token)
    {
        if (!_firstBytes.TryGetValue(token, out var first))
        {
            var (dfa, _, _) = Explored(token);
            first = new bool[256];
            for (var b = 0; b < 256; b++)
            {
                first[b] = dfa.Step(dfa.Start, (byte)b) != LazyDfa.Dead;
            }

            _firstBytes[token] = first;
        }

        return first;
    }

    private (LazyDfa Dfa, List<int> Accepting, bool Truncated) Explored(object token)
    {
        if (_tokens.TryGetValue(token, out var known))
        {
            return known;
        }

        var nfa = new Nfa();
        nfa.Accept = rawToken(token).Emit(nfa, nfa.Start);
        var dfa = new LazyDfa(nfa);
        var accepting = new List<int>();
        var seen = new HashSet<int> { dfa.Start };
        var pending = new Queue<int>([dfa.Start]);
        var truncated = false;
        while (pending.TryDequeue(out var state))
        {
            if (dfa.IsAccepting(state))
            {
                accepting.Add(state);
            }

            for (var b = 0; b < 256; b++)
            {
                var next = dfa.Step(state, (byte)b);
                if (next != LazyDfa.Dead && seen.Add(next))
                {
                    if (seen.Count > MaxStates)
                    {
                        truncated = true;
                        pending.Clear();
                        break;
                    }

                    pending.Enqueue(next);
                }
            }
        }

        known = (dfa, accepting, truncated);
        _tokens[token] = known;
        return known;
    }
}
