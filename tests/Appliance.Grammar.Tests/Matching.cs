using System.Text;
using System.Text.Json;
using Appliance.Grammar.Automaton;
using Appliance.Grammar.Language;
using Appliance.Grammar.Schema;

namespace Appliance.Grammar.Tests;

/// <summary>Compiles a schema to its automaton and asks whether whole texts belong to its language.</summary>
internal static class Matching
{
    public static LazyDfa Automaton(string schema, bool strict = true)
    {
        using var document = JsonDocument.Parse(schema);
        var nfa = new Nfa();
        nfa.Accept = Lang.Seq(JsonLanguage.Whitespace, SchemaCompiler.Compile(document.RootElement, strict)).Emit(nfa, nfa.Start);
        return new LazyDfa(nfa);
    }

    public static bool Accepts(this LazyDfa dfa, string text) =>
        dfa.Walk(dfa.Start, Encoding.UTF8.GetBytes(text)) is var end && end != LazyDfa.Dead && dfa.IsAccepting(end);
}
