using System.Text.Json;

namespace Appliance.Prompting;

/// <summary>
/// Llama 3.1 / 3.2 / 3.3 with JSON tool calling: the whole answer is a call object
/// <c>{"name": ..., "parameters": {...}}</c> (several separated by semicolons), optionally after <c>&lt;|python_tag|&gt;</c>.
/// </summary>
internal sealed class Llama3ToolCalls : ToolCallFormat
{
    private const string PythonTag = "<|python_tag|>";

    public override string Name => "llama3_json";

    public override (string Prefix, string Separator, string Suffix) Frame => (string.Empty, "; ", string.Empty);

    public override string ArgumentsKey => "parameters";

    // An answer that begins like a call (after whitespace) is held whole; any other answer streams.
    public override int HoldFrom(string text)
    {
        var trimmed = text.TrimStart();
        if (trimmed.Length == 0)
        {
            return 0;
        }

        return trimmed.StartsWith('{') || trimmed.StartsWith(PythonTag, StringComparison.Ordinal) || PythonTag.StartsWith(trimmed, StringComparison.Ordinal)
            ? 0
            : text.Length;
    }

    protected override (string Text, List<(string Name, string Arguments)> Calls)? Calls(string output)
    {
        var body = output.Trim();
        if (body.StartsWith(PythonTag, StringComparison.Ordinal))
        {
            body = body[PythonTag.Length..].Trim();
        }

        if (!body.StartsWith('{'))
        {
            return null;
        }

        var calls = new List<(string, string)>();
        var reader = new Utf8JsonReader(System.Text.Encoding.UTF8.GetBytes(body), new JsonReaderOptions { AllowMultipleValues = true });
        while (true)
        {
            using var call = JsonDocument.ParseValue(ref reader);
            calls.Add(Call(call.RootElement, "parameters", "arguments"));
            var rest = body[(int)reader.BytesConsumed..].TrimStart();
            if (rest.Length == 0)
            {
                break;
            }

            if (!rest.StartsWith(';'))
            {
                throw new JsonException("text after a tool call");
            }

            body = rest[1..].TrimStart();
            reader = new Utf8JsonReader(System.Text.Encoding.UTF8.GetBytes(body), new JsonReaderOptions { AllowMultipleValues = true });
        }

        return (string.Empty, calls);
    }
}
