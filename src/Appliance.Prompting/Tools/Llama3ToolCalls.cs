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
        var bytes = System.Text.Encoding.UTF8.GetBytes(body);
        var position = 0;
        while (true)
        {
            // Positions are in bytes: the reader counts UTF-8 bytes, and arguments may hold any text.
            var reader = new Utf8JsonReader(bytes.AsSpan(position), new JsonReaderOptions { AllowMultipleValues = true });
            using var call = JsonDocument.ParseValue(ref reader);
            if (!call.RootElement.TryGetProperty("parameters", out _) && !call.RootElement.TryGetProperty("arguments", out _))
            {
                throw new JsonException("a JSON answer without parameters is an answer, not a call");
            }

            calls.Add(Call(call.RootElement, "parameters", "arguments"));
            position += (int)reader.BytesConsumed;
            while (position < bytes.Length && bytes[position] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t')
            {
                position++;
            }

            if (position == bytes.Length)
            {
                break;
            }

            if (bytes[position] != (byte)';')
            {
                throw new JsonException("text after a tool call");
            }

            position++;
        }

        return (string.Empty, calls);
    }
}
