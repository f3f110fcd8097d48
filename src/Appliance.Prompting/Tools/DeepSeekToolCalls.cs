using System.Text;
using System.Text.Json;

namespace Appliance.Prompting;

/// <summary>
/// DeepSeek V3: the calls between <c>&lt;｜tool▁calls▁begin｜&gt;</c> and <c>&lt;｜tool▁calls▁end｜&gt;</c>, each one
/// <c>&lt;｜tool▁call▁begin｜&gt;function&lt;｜tool▁sep｜&gt;NAME</c>, a newline, its arguments in a <c>```json</c> fence,
/// then <c>&lt;｜tool▁call▁end｜&gt;</c>; several calls are separated by a newline. The markers are tokens of their own
/// in DeepSeek's vocabulary (added, not special, so they reach the text).
/// </summary>
internal sealed class DeepSeekToolCalls : ToolCallFormat
{
    public const string CallsBegin = "<｜tool▁calls▁begin｜>";
    public const string CallBegin = "<｜tool▁call▁begin｜>";
    public const string NameSeparator = "<｜tool▁sep｜>";
    public const string CallEnd = "<｜tool▁call▁end｜>";
    public const string CallsEnd = "<｜tool▁calls▁end｜>";

    public override string Name => "deepseek_v3";

    /// <summary>
    /// Whether a chat template writes calls in this layout (the type, the separator token, then the name): later
    /// DeepSeek templates use the same tokens with another layout (name first), which this format would not read.
    /// </summary>
    public static bool WrittenBy(string template) =>
        template.Contains(CallsBegin, StringComparison.Ordinal) && template.Contains("'" + NameSeparator + "' + tool['function']['name']", StringComparison.Ordinal);

    public override (string Prefix, string Separator, string Suffix) Frame => (CallsBegin, "\n", CallsEnd);

    public override string ArgumentsKey => "arguments";

    public override (string Open, bool QuotedName, string BeforeArguments, string Close) CallLayout =>
        (CallBegin + "function" + NameSeparator, false, "\n```json\n", "\n```" + CallEnd);

    public override IReadOnlyList<string> Markers => [CallsBegin, CallBegin, NameSeparator, CallEnd, CallsEnd];

    /// <summary>Its calls are not JSON objects: read by their markers, around a bare name.</summary>
    public override IStreamedCallReader StreamedCallReader() => new BareNameCallReader(CallLayout.Open, CallLayout.BeforeArguments, CallLayout.Close);

    public override int HoldFrom(string text) => Math.Min(MarkerStart(text, CallsBegin), MarkerStart(text, CallBegin));

    protected override (string Text, List<(string Name, string Arguments)> Calls)? Calls(string output)
    {
        var first = output.IndexOf(CallBegin, StringComparison.Ordinal);
        if (first < 0)
        {
            return null;
        }

        // The outer marker may be missing (a model that starts with the call itself); text ends where either begins.
        var opened = output.IndexOf(CallsBegin, StringComparison.Ordinal);
        var text = new StringBuilder(output[..(opened >= 0 && opened < first ? opened : first)]);
        var calls = new List<(string, string)>();
        var position = first;
        while (output.IndexOf(CallBegin, position, StringComparison.Ordinal) is var at and >= 0)
        {
            // Between two calls only whitespace, or the outer markers of a second block (the template writes those).
            if (calls.Count > 0 && !string.IsNullOrWhiteSpace(output[position..at].Replace(CallsEnd, null, StringComparison.Ordinal).Replace(CallsBegin, null, StringComparison.Ordinal)))
            {
                throw new JsonException("text between two calls");
            }

            var separator = output.IndexOf(NameSeparator, at, StringComparison.Ordinal);
            var lineEnd = separator < 0 ? -1 : output.IndexOf('\n', separator);
            if (lineEnd < 0 || output[(at + CallBegin.Length)..separator].Trim() != "function")
            {
                throw new JsonException("a call needs 'function', the separator token and its name on one line");
            }

            var name = output[(separator + NameSeparator.Length)..lineEnd].Trim();
            var next = output.IndexOf(CallBegin, lineEnd, StringComparison.Ordinal);
            var end = output.IndexOf(CallEnd, lineEnd, StringComparison.Ordinal);
            if (next >= 0 && (end < 0 || end > next))
            {
                throw new JsonException("a call that does not end before the next one begins");
            }

            var body = Unfenced(end < 0 ? output[lineEnd..] : output[lineEnd..end]); // the last call may lose its end to max_tokens
            using var arguments = JsonDocument.Parse(body);
            if (name.Length == 0 || arguments.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new JsonException("a call needs a name and an arguments object");
            }

            calls.Add((name, arguments.RootElement.GetRawText()));
            position = end < 0 ? output.Length : end + CallEnd.Length;
        }

        var rest = output[position..];
        var closed = rest.IndexOf(CallsEnd, StringComparison.Ordinal);
        text.Append(closed >= 0 ? rest[(closed + CallsEnd.Length)..] : rest);
        return (text.ToString(), calls);
    }

    /// <summary>The arguments inside their fence (```json ... ```); text without a fence is taken as it is.</summary>
    private static string Unfenced(string body)
    {
        var trimmed = body.Trim();
        if (trimmed.StartsWith("```", StringComparison.Ordinal))
        {
            var newline = trimmed.IndexOf('\n');
            trimmed = newline < 0 ? string.Empty : trimmed[(newline + 1)..];
            // The closing fence, whole or (cut by max_tokens) in part.
            trimmed = trimmed.TrimEnd().TrimEnd('`');
        }

        return trimmed;
    }
}
