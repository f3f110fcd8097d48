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

    private readonly Dictionary<object, Token> _tokens = [];
    private int _explored;

    /// <summary>Whether a complete <paramref name="before"/> token could go on with a byte that <paramref name="after"/> may start with.</summary>
    public bool RunsInto(object before, object after) => Bytes(before).Continues.Meets(Bytes(after).First);

    /// <summary>Whether any of <paramref name="before"/> could run into any of <paramref name="after"/> (a quick test before looking for the pair).</summary>
    public bool AnyRunsInto(IEnumerable<object> before, IEnumerable<object> after)
    {
        var continues = before.Aggregate(ByteSet.Empty, (set, token) => set.Or(Bytes(token).Continues));
        return after.Any(token => continues.Meets(Bytes(token).First));
    }

    /// <summary>Whether the token may match the empty text.</summary>
    public bool AcceptsEmpty(object token) => Bytes(token).Empty;

    private Token Bytes(object token)
    {
        if (_tokens.TryGetValue(token, out var known))
        {
            return known;
        }

        var nfa = new Nfa();
        nfa.Accept = rawToken(token).Emit(nfa, nfa.Start);
        var dfa = new LazyDfa(nfa);
        var first = ByteSet.Empty;
        var continues = ByteSet.Empty;
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

                first = state == dfa.Start ? first.With(b) : first;
                continues = accepting ? continues.With(b) : continues;
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

        known = new Token(first, continues, dfa.IsAccepting(dfa.Start));
        _tokens[token] = known;
        return known;
    }

    private sealed record Token(ByteSet First, ByteSet Continues, bool Empty);

    /// <summary>A set of byte values as four 64-bit masks.</summary>
    private readonly record struct ByteSet(ulong A, ulong B, ulong C, ulong D)
    {
        public static readonly ByteSet Empty = new(0, 0, 0, 0);

        public ByteSet With(int value) => (value >> 6) switch
        {
            0 => this with { A = A | (1UL << value) },
            1 => this with { B = B | (1UL << (value & 63)) },
            2 => this with { C = C | (1UL << (value & 63)) },
            _ => this with { D = D | (1UL << (value & 63)) },
        };

        public ByteSet Or(ByteSet other) => new(A | other.A, B | other.B, C | other.C, D | other.D);

        public bool Meets(ByteSet other) => ((A & other.A) | (B & other.B) | (C & other.C) | (D & other.D)) != 0;
    }
}
