using System.Text;
using Appliance.Grammar.Automaton;
using Appliance.Grammar.Language;
using Appliance.Grammar.Schema;

namespace Appliance.Grammar;

/// <summary>
/// A grammar a custom tool's text input must follow (a Lark grammar): read once, enforced while sampling through
/// <see cref="StructuredOutputs.ToolCalls"/>, and checked on an input the model wrote without it (<see cref="Matches"/>).
/// </summary>
public sealed class TextGrammar
{
    private readonly LarkGrammar _grammar;
    private readonly Lazy<LazyDfa> _matcher;
    private readonly Lock _matching = new();

    private TextGrammar(string definition, LarkGrammar grammar)
    {
        Definition = definition;
        _grammar = grammar;
        _matcher = new Lazy<LazyDfa>(() =>
        {
            var nfa = new Nfa();
            nfa.Accept = grammar.Compile(raw: true).Emit(nfa, nfa.Start);
            return new LazyDfa(nfa);
        });
    }

    /// <summary>How deep recursion (other than at a rule's ends) is unrolled: as deep as the automaton fits.</summary>
    public int Recursion => _grammar.Recursion;

    /// <summary>The grammar as it was written.</summary>
    public string Definition { get; }

    /// <summary>Reads a Lark grammar. Throws <see cref="SchemaRefusedException"/> saying what cannot be read or enforced.</summary>
    public static TextGrammar Lark(string definition) => new(definition, LarkGrammar.Parse(definition));

    /// <summary>Whether <paramref name="text"/> is one of the grammar's texts (false too when matching it needs too large an automaton).</summary>
    public bool Matches(string text)
    {
        try
        {
            lock (_matching)
            {
                var dfa = _matcher.Value;
                var state = dfa.Walk(dfa.Start, Encoding.UTF8.GetBytes(text));
                return state != LazyDfa.Dead && dfa.IsAccepting(state);
            }
        }
        catch (GrammarTooLargeException)
        {
            return false;
        }
    }

    /// <summary>The language of the texts as JSON writes them inside a string (no quotes).</summary>
    internal Lang JsonContent() => _grammar.Compile(raw: false);
}
