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
        var count = properties.Count;

        // Which (property, is-it-the-first-member) entries can be reached: the first property as the first member,
        // then every property after a present one, and after a skipped optional one as the skipped one was.
        var reachable = new bool[count + 1, 2];
        reachable[0, 1] = true;
        for (var i = 0; i < count; i++)
        {
            for (var first = 0; first < 2; first++)
            {
                if (reachable[i, first])
                {
                    reachable[i + 1, 0] = true;
                    reachable[i + 1, first] |= !properties[i].Required;
                }
            }
        }

        // Written from the last property back (no recursion: a schema may have thousands of properties).
        var entries = new int[count + 1, 2];
        entries[count, 0] = entries[count, 1] = close;
        for (var i = count - 1; i >= 0; i--)
        {
            var property = properties[i];
            for (var first = 0; first < 2; first++)
            {
                if (!reachable[i, first])
                {
                    continue;
                }

                var entry = nfa.NewState();
                entries[i, first] = entry;
                var member = Seq(JsonLanguage.Literal(property.Name), Text(":"), JsonLanguage.Whitespace, property.Value);
                var end = (first == 1 ? member : Seq(Text(","), JsonLanguage.Whitespace, member)).Emit(nfa, entry);
                nfa.Empty(end, entries[i + 1, 0]);
                if (!property.Required)
                {
                    nfa.Empty(entry, entries[i + 1, first]);
                }
            }
        }

        nfa.Empty(afterOpen, entries[0, 1]);
        return Seq(JsonLanguage.Whitespace, Text("}")).Emit(nfa, close);
    }
}
