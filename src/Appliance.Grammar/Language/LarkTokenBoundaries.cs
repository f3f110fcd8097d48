using Appliance.Grammar.Automaton;
using Appliance.Grammar.Schema;

namespace Appliance.Grammar.Language;

/// <summary>
/// Whether one token may run into the next. A lexer that takes each terminal's longest match (as OpenAI's grammar
/// engine and Lark's lexers do) reads a text the rules derive differently when a complete token could go on with what
/// follows: with <c>NAME "FROM"</c> and names of letters, "xFROM" is one name. Per token, two sets of bytes are kept:
/// those it may start with, and those that may continue it once it is complete; a token runs into the next when the
/// second set of the one meets the first set of the other. <see cref="LarkGrammar"/> decides what to do about it.
/// </summary>
/// <param name="rawToken">A token's language as UTF-8 (tokens are keyed by what they are).</param>
internal sealed class LarkTokenBoundaries(Func<object, Lang> rawToken)
{
    /// <summary>The most automaton states explored for all of a grammar's tokens together.</summary>
    public const int MaxStates = 200_000;

    private readonly Dictionary<object, (bool[] First, bool[] Continues)> _tokens = [];
    private int _explored;

    /// <summary>Whether a complete <paramref name="before"/> token could go on with a byte that <paramref name="after"/> may start with.</summary>
    public bool RunsInto(object before, object after)
    {
        var continues = Bytes(before).Continues;
        var first = Bytes(after).First;
        for (var b = 0; b < 256; b++)
        {
            if (continues[b] && first[b])
            {
                return true;
            }
        }

        return false;
    }

    private (bool[] First, bool[] Continues) Bytes(object token)
    {
        if (_tokens.TryGetValue(token, out var known))
        {
            return known;
        }

        var nfa = new Nfa();
        nfa.Accept = rawToken(token).Emit(nfa, nfa.Start);
        var dfa = new LazyDfa(nfa);
        var first = new bool[256];
        var continues = new bool[256];
        var seen = new HashSet<int> { dfa.Start };
        var pending = new Queue<int>([dfa.Start]);
        while (pending.TryDequeue(out var state))
        {
            var accepting = dfa.IsAccepting(state);
            for (var b = 0; b < 256; b++)
            {
                var next = dfa.Step(state, (byte)b);
                if (next == LazyDfa.Dead)
                {
                    continue;
                }

                first[b] |= state == dfa.Start;
                continues[b] |= accepting;
                if (seen.Add(next))
                {
                    if (++_explored > MaxStates)
                    {
                        throw new SchemaRefusedException($"The grammar's tokens are too large to check against each other (more than {MaxStates} automaton states).", "grammar");
                    }

                    pending.Enqueue(next);
                }
            }
        }

        known = (first, continues);
        _tokens[token] = known;
        return known;
    }
}
