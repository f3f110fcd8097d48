using System.Text.Json;

namespace Appliance.Prompting;

/// <summary>Mistral: <c>[TOOL_CALLS]</c> followed by a JSON list of call objects.</summary>
internal sealed class MistralToolCalls : ToolCallFormat
{
    private const string Marker = "[TOOL_CALLS]";

    public override string Name => "mistral";

    public override (string Prefix, string Separator, string Suffix) Frame => ("[TOOL_CALLS][", ", ", "]");

    public override string ArgumentsKey => "arguments";

    public override IReadOnlyList<string> Markers => [Marker];

    public override int HoldFrom(string text) => MarkerStart(text, Marker);

    protected override (string Text, List<(string Name, string Arguments)> Calls)? Calls(string output)
    {
        var at = output.IndexOf(Marker, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        using var list = JsonDocument.Parse(output[(at + Marker.Length)..]);
        var calls = list.RootElement.ValueKind == JsonValueKind.Array
            ? list.RootElement.EnumerateArray().Select(call => Call(call, "arguments", "parameters")).ToList()
            : [Call(list.RootElement, "arguments", "parameters")];
        return (output[..at], calls);
    }
}
