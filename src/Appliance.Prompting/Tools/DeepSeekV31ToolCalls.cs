using System.Text;
using System.Text.Json;

namespace Appliance.Prompting;

/// <summary>
/// DeepSeek V3.1: the same marker tokens as V3 in another layout. Each call is
/// <c>&lt;｜tool▁call▁begin｜&gt;NAME&lt;｜tool▁sep｜&gt;</c>, its arguments as bare JSON, then
/// <c>&lt;｜tool▁call▁end｜&gt;</c>; the calls follow one another with nothing between them, inside
/// <c>&lt;｜tool▁calls▁begin｜&gt;</c> ... <c>&lt;｜tool▁calls▁end｜&gt;</c>.
/// </summary>
internal sealed class DeepSeekV31ToolCalls : ToolCallFormat
{
    public override string Name => "deepseek_v3_1";

    /// <summary>Whether a chat template writes calls in this layout: the function's name, then the separator token.</summary>
    public static bool WrittenBy(string template) =>
        template.Contains(DeepSeekToolCalls.CallsBegin, StringComparison.Ordinal)
        && template.Contains("tool['function']['name'] + '" + DeepSeekToolCalls.NameSeparator + "'", StringComparison.Ordinal);

    public override (string Prefix, string Separator, string Suffix) Frame => (DeepSeekToolCalls.CallsBegin, string.Empty, DeepSeekToolCalls.CallsEnd);

    public override string ArgumentsKey => "arguments";

    public override (string Open, bool QuotedName, string BeforeArguments, string Close) CallLayout =>
        (DeepSeekToolCalls.CallBegin, false, DeepSeekToolCalls.NameSeparator, DeepSeekToolCalls.CallEnd);

    public override IReadOnlyList<string> Markers => ToolCallFormat.DeepSeekV3.Markers;

    /// <summary>Its calls are not JSON objects: read by their markers, around a bare name.</summary>
    public override IStreamedCallReader StreamedCallReader() => new BareNameCallReader(CallLayout.Open, CallLayout.BeforeArguments, CallLayout.Close);

    public override int HoldFrom(string text) =>
        Math.Min(MarkerStart(text, DeepSeekToolCalls.CallsBegin), MarkerStart(text, DeepSeekToolCalls.CallBegin));

    protected override (string Text, List<(string Name, string Arguments)> Calls)? Calls(string output)
    {
        var first = output.IndexOf(DeepSeekToolCalls.CallBegin, StringComparison.Ordinal);
        if (first < 0)
        {
            return null;
        }

        var opened = output.IndexOf(DeepSeekToolCalls.CallsBegin, StringComparison.Ordinal);
        var text = new StringBuilder(output[..(opened >= 0 && opened < first ? opened : first)]);
        var calls = new List<(string, string)>();
        var position = first;
        while (output.IndexOf(DeepSeekToolCalls.CallBegin, position, StringComparison.Ordinal) is var at and >= 0)
        {
            // Calls are chained directly; whitespace or the outer markers of a second block are tolerated, text is not.
            var between = output[position..at].Replace(DeepSeekToolCalls.CallsEnd, null, StringComparison.Ordinal).Replace(DeepSeekToolCalls.CallsBegin, null, StringComparison.Ordinal);
            if (calls.Count > 0 && !string.IsNullOrWhiteSpace(between))
            {
                throw new JsonException("text between two calls");
            }

            var nameStart = at + DeepSeekToolCalls.CallBegin.Length;
            var separator = output.IndexOf(DeepSeekToolCalls.NameSeparator, nameStart, StringComparison.Ordinal);
            var next = output.IndexOf(DeepSeekToolCalls.CallBegin, nameStart, StringComparison.Ordinal);
            if (separator < 0 || (next >= 0 && next < separator))
            {
                throw new JsonException("a call needs its name and the separator token");
            }

            var name = output[nameStart..separator].Trim();
            var argumentsStart = separator + DeepSeekToolCalls.NameSeparator.Length;
            var end = output.IndexOf(DeepSeekToolCalls.CallEnd, argumentsStart, StringComparison.Ordinal);
            var blockEnd = output.IndexOf(DeepSeekToolCalls.CallsEnd, argumentsStart, StringComparison.Ordinal);
            if (blockEnd >= 0 && (end < 0 || blockEnd < end))
            {
                end = blockEnd; // a call that skipped its own end marker and closed the block
            }

            next = output.IndexOf(DeepSeekToolCalls.CallBegin, argumentsStart, StringComparison.Ordinal);
            if (next >= 0 && (end < 0 || end > next))
            {
                throw new JsonException("a call that does not end before the next one begins");
            }

            // The last call may lose its end marker to max_tokens: its arguments must then be complete JSON all the same.
            var body = end < 0 ? output[argumentsStart..] : output[argumentsStart..end];
            using var arguments = JsonDocument.Parse(body);
            if (name.Length == 0 || name.Contains('\n') || arguments.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new JsonException("a call needs a name and an arguments object");
            }

            calls.Add((name, arguments.RootElement.GetRawText()));
            position = end < 0 ? output.Length : end == blockEnd ? end : end + DeepSeekToolCalls.CallEnd.Length;
        }

        var rest = output[position..];
        var closed = rest.IndexOf(DeepSeekToolCalls.CallsEnd, StringComparison.Ordinal);
        text.Append(closed >= 0 ? rest[(closed + DeepSeekToolCalls.CallsEnd.Length)..] : rest);
        return (text.ToString(), calls);
    }
}
