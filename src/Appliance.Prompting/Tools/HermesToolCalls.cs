using System.Text;
using System.Text.Json;

namespace Appliance.Prompting;

/// <summary>Hermes / Qwen 2.5 / Qwen3: each call a JSON object inside <c>&lt;tool_call&gt;...&lt;/tool_call&gt;</c>.</summary>
internal sealed class HermesToolCalls : ToolCallFormat
{
    private const string Open = "<tool_call>";
    private const string Close = "</tool_call>";

    public override string Name => "hermes";

    public override (string Prefix, string Separator, string Suffix) Frame => ("<tool_call>\n", "\n</tool_call>\n<tool_call>\n", "\n</tool_call>");

    public override string ArgumentsKey => "arguments";

    public override IReadOnlyList<string> Markers => [Open, Close];

    public override int HoldFrom(string text) => MarkerStart(text, Open);

    protected override (string Text, List<(string Name, string Arguments)> Calls)? Calls(string output)
    {
        var text = new StringBuilder();
        var calls = new List<(string, string)>();
        var position = 0;
        while (output.IndexOf(Open, position, StringComparison.Ordinal) is var start and >= 0)
        {
            text.Append(output, position, start - position);
            var bodyStart = start + Open.Length;
            var end = output.IndexOf(Close, bodyStart, StringComparison.Ordinal);
            var body = end < 0 ? output[bodyStart..] : output[bodyStart..end]; // the last block may lose its end tag to max_tokens or a stop token
            using var call = JsonDocument.Parse(body);
            calls.Add(Call(call.RootElement, "arguments", "parameters"));
            position = end < 0 ? output.Length : end + Close.Length;
        }

        text.Append(output, position, output.Length - position);
        return (text.ToString(), calls);
    }
}
