using System.Text;
using Appliance.Grammar.Automaton;

namespace Appliance.Grammar.Language;

/// <summary>
/// A regular language over bytes, as a tree of literals, byte classes, sequences, choices and repetitions. It writes
/// itself into an <see cref="Nfa"/> from a given state and returns the state where it ends; writing it twice makes two
/// independent copies, which bounded repetition relies on.
/// </summary>
internal abstract class Lang
{
    /// <summary>The empty language: no output at all matches (a dead branch, for example recursion cut at its depth).</summary>
    public static readonly Lang Nothing = new NothingLang();

    /// <summary>The language of the empty output.</summary>
    public static readonly Lang Epsilon = new SequenceLang([]);

    public abstract int Emit(Nfa nfa, int from);

    /// <summary>Whether the language is certainly empty (so choices can drop it).</summary>
    public virtual bool IsNothing => false;

    public static Lang Text(string text) => new LiteralLang(Encoding.UTF8.GetBytes(text));

    public static Lang Bytes(byte[] bytes) => new LiteralLang(bytes);

    public static Lang Range(char low, char high) => new ClassLang([((byte)low, (byte)high)]);

    public static Lang Class(params (int Low, int High)[] ranges) => new ClassLang([.. ranges.Select(r => ((byte)r.Low, (byte)r.High))]);

    /// <summary>One of the characters listed.</summary>
    public static Lang OneOf(string characters) => new ClassLang([.. characters.Select(c => ((byte)c, (byte)c))]);

    public static Lang Seq(params Lang[] parts) => parts.Any(p => p.IsNothing) ? Nothing : new SequenceLang(parts);

    public static Lang Any(params Lang[] choices) => Any((IEnumerable<Lang>)choices);

    public static Lang Any(IEnumerable<Lang> choices)
    {
        var kept = choices.Where(c => !c.IsNothing).ToArray();
        return kept.Length switch
        {
            0 => Nothing,
            1 => kept[0],
            _ => new ChoiceLang(kept),
        };
    }

    public static Lang Optional(Lang inner) => Any(Epsilon, inner);

    /// <summary>Between <paramref name="min"/> and <paramref name="max"/> repetitions (no upper bound when null).</summary>
    public static Lang Repeat(Lang inner, int min, int? max) => inner.IsNothing
        ? (min == 0 ? Epsilon : Nothing)
        : new RepeatLang(inner, min, max);

    /// <summary>
    /// Items separated by <paramref name="separator"/>, between <paramref name="min"/> and <paramref name="max"/> of
    /// them. Without an upper bound the item is written once and looped, so nesting does not multiply its size.
    /// </summary>
    public static Lang SeparatedList(Lang item, Lang separator, int min, int? max)
    {
        if (max == 0 || item.IsNothing)
        {
            return min == 0 ? Epsilon : Nothing;
        }

        var rest = Repeat(Seq(separator, item), Math.Max(min - 1, 0), max - 1);
        var list = Seq(item, rest);
        return min == 0 ? Optional(list) : list;
    }

    private sealed class NothingLang : Lang
    {
        public override bool IsNothing => true;

        public override int Emit(Nfa nfa, int from) => nfa.NewState(); // reachable from nowhere
    }

    private sealed class LiteralLang(byte[] bytes) : Lang
    {
        public override int Emit(Nfa nfa, int from)
        {
            foreach (var value in bytes)
            {
                var next = nfa.NewState();
                nfa.Move(from, value, value, next);
                from = next;
            }

            return from;
        }
    }

    private sealed class ClassLang((byte Low, byte High)[] ranges) : Lang
    {
        public override int Emit(Nfa nfa, int from)
        {
            var end = nfa.NewState();
            foreach (var (low, high) in ranges)
            {
                nfa.Move(from, low, high, end);
            }

            return end;
        }
    }

    private sealed class SequenceLang(Lang[] parts) : Lang
    {
        public override int Emit(Nfa nfa, int from)
        {
            foreach (var part in parts)
            {
                from = part.Emit(nfa, from);
            }

            return from;
        }
    }

    private sealed class ChoiceLang(Lang[] choices) : Lang
    {
        public override int Emit(Nfa nfa, int from)
        {
            var end = nfa.NewState();
            foreach (var choice in choices)
            {
                var start = nfa.NewState();
                nfa.Empty(from, start);
                nfa.Empty(choice.Emit(nfa, start), end);
            }

            return end;
        }
    }

    private sealed class RepeatLang(Lang inner, int min, int? max) : Lang
    {
        public override int Emit(Nfa nfa, int from)
        {
            for (var i = 0; i < min; i++)
            {
                from = inner.Emit(nfa, from);
            }

            if (max is null)
            {
                // A fresh loop state, so that the loop's way back cannot reach what came before it.
                var loop = nfa.NewState();
                nfa.Empty(from, loop);
                nfa.Empty(inner.Emit(nfa, loop), loop);
                return loop;
            }

            var end = nfa.NewState();
            for (var i = min; i < max; i++)
            {
                nfa.Empty(from, end);
                from = inner.Emit(nfa, from);
            }

            nfa.Empty(from, end);
            return end;
        }
    }
}
