using Appliance.Grammar.Automaton;
using static Appliance.Grammar.Language.Lang;

namespace Appliance.Grammar.Language;

/// <summary>
/// A JSON object whose properties come in the schema's order, required ones always, optional ones where the model
/// chooses. Each property is written once for "first member" and once for "after a comma" at most, so optional
/// properties do not multiply the automaton.
/// </summary>
internal sealed class ObjectLang(IReadOnlyList<ObjectLang.Property> properties) : Lang
{
    public sealed record Property(string Name, Lang Value, bool Required);

    public static Lang Of(IReadOnlyList<Property> properties) =>
        properties.Any(p => p.Required && p.Value.IsNothing) ? Nothing : new ObjectLang([.. properties.Where(p => !p.Value.IsNothing)]);

    public override int Emit(Nfa nfa, int from)
    {
        var afterOpen = Seq(Text("{"), JsonLanguage.Whitespace).Emit(nfa, from);
        var close = nfa.NewState();
        var entries = new Dictionary<(int Index, bool First), int>();

        int Entry(int index, bool first)
        {
            if (index == properties.Count)
            {
                return close;
            }

            if (entries.TryGetValue((index, first), out var known))
            {
                return known;
            }

            var entry = nfa.NewState();
            entries[(index, first)] = entry;
            var property = properties[index];
            var member = Seq(JsonLanguage.Literal(property.Name), Text(":"), JsonLanguage.Whitespace, property.Value);
            var end = (first ? member : Seq(Text(","), JsonLanguage.Whitespace, member)).Emit(nfa, entry);
            nfa.Empty(end, Entry(index + 1, false));
            if (!property.Required)
            {
                nfa.Empty(entry, Entry(index + 1, first));
            }

            return entry;
        }

        nfa.Empty(afterOpen, Entry(0, true));
        return Seq(JsonLanguage.Whitespace, Text("}")).Emit(nfa, close);
    }
}
