using System.Text.Json;

namespace Appliance.Prompting;

/// <summary>
/// How a model family writes tool calls in its output, read back into calls: Hermes/Qwen's <c>&lt;tool_call&gt;</c>
/// blocks, Llama 3.x's bare JSON objects, Mistral's <c>[TOOL_CALLS]</c> list, DeepSeek V3's special-token blocks with
/// fenced JSON arguments and V3.1's with bare ones. Output that does not parse as calls is the answer's text, never an error.
/// </summary>
public abstract class ToolCallFormat
{
    public static readonly ToolCallFormat Hermes = new HermesToolCalls();
    public static readonly ToolCallFormat Llama3Json = new Llama3ToolCalls();
    public static readonly ToolCallFormat Mistral = new MistralToolCalls();
    public static readonly ToolCallFormat DeepSeekV3 = new DeepSeekToolCalls();
    public static readonly ToolCallFormat DeepSeekV31 = new DeepSeekV31ToolCalls();

    public static IReadOnlyList<ToolCallFormat> All { get; } = [Hermes, Llama3Json, Mistral, DeepSeekV3, DeepSeekV31];

    /// <summary>Its name in configuration (Models:&lt;id&gt;:ToolCallFormat).</summary>
    public abstract string Name { get; }

    /// <summary>What comes before the first call, between calls and after the last (for constrained calls).</summary>
    public abstract (string Prefix, string Separator, string Suffix) Frame { get; }

    /// <summary>The key of the arguments object inside a call ("arguments", or Llama 3's "parameters").</summary>
    public abstract string ArgumentsKey { get; }

    /// <summary>
    /// One call as the model writes it, for constrained calls: the text before the function's name, whether the name is
    /// a JSON string (or bare), the text between name and arguments object, and the text after it. By default a JSON
    /// object <c>{"name": ..., "arguments": {...}}</c>.
    /// </summary>
    public virtual (string Open, bool QuotedName, string BeforeArguments, string Close) CallLayout => ("{\"name\": ", true, $", \"{ArgumentsKey}\": ", "}");

    /// <summary>
    /// A reader of forced calls while they are generated, so they stream as they come: by default one for calls that are
    /// JSON objects (<see cref="PartialToolCalls"/>).
    /// </summary>
    public virtual IStreamedCallReader StreamedCallReader() => new PartialToolCalls(ArgumentsKey);

    /// <summary>
    /// The markers <see cref="Frame"/> writes that a vocabulary may hold as one special token (Mistral's [TOOL_CALLS]):
    /// a constrained call may write them as that token, as the model was trained to.
    /// </summary>
    public virtual IReadOnlyList<string> Markers => [];

    public static ToolCallFormat? Named(string name) => All.FirstOrDefault(f => f.Name == name);

    /// <summary>Whether <see cref="FromTemplate"/> recognises the template's format, rather than falling back to Hermes.</summary>
    public static bool Recognised(string source) =>
        DeepSeekToolCalls.WrittenBy(source) || DeepSeekV31ToolCalls.WrittenBy(source) || source.Contains("[TOOL_CALLS]", StringComparison.Ordinal)
        || source.Contains("<tool_call>", StringComparison.Ordinal) || source.Contains("<|python_tag|>", StringComparison.Ordinal)
        || source.Contains("ipython", StringComparison.Ordinal);

    /// <summary>The format a chat template writes calls in, recognised from its text; Hermes when it says nothing.</summary>
    public static ToolCallFormat FromTemplate(string? source) => source switch
    {
        not null when DeepSeekToolCalls.WrittenBy(source) => DeepSeekV3,
        not null when DeepSeekV31ToolCalls.WrittenBy(source) => DeepSeekV31,
        not null when source.Contains("[TOOL_CALLS]", StringComparison.Ordinal) => Mistral,
        not null when source.Contains("<tool_call>", StringComparison.Ordinal) => Hermes,
        not null when source.Contains("<|python_tag|>", StringComparison.Ordinal) || source.Contains("ipython", StringComparison.Ordinal) => Llama3Json,
        _ => Hermes,
    };

    /// <summary>The calls in <paramref name="output"/> and the text around them; no calls (and the whole text) when it holds none or they are malformed.</summary>
    public ParsedOutput Parse(string output, Func<string> newId)
    {
        try
        {
            if (Calls(output) is { } found && found.Calls.Count > 0)
            {
                return new ParsedOutput(string.IsNullOrWhiteSpace(found.Text) ? null : found.Text.Trim(), [.. found.Calls.Select(c => new ToolCall(newId(), c.Name, c.Arguments))]);
            }
        }
        catch (JsonException)
        {
            // malformed: the model's text stands as its answer
        }

        return new ParsedOutput(output, []);
    }

    /// <summary>
    /// While streaming: where the text that might be a call begins (held back until the answer ends), or the text's
    /// length when all of it is plain answer so far.
    /// </summary>
    public abstract int HoldFrom(string text);

    protected abstract (string Text, List<(string Name, string Arguments)> Calls)? Calls(string output);

    /// <summary>One call object: {"name": ..., "arguments" (or "parameters"): {...}}; arguments given as a string are taken as they are.</summary>
    protected static (string Name, string Arguments) Call(JsonElement call, params string[] argumentKeys)
    {
        if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
        {
            throw new JsonException("a tool call needs a name");
        }

        foreach (var key in argumentKeys)
        {
            if (call.TryGetProperty(key, out var arguments))
            {
                return arguments.ValueKind switch
                {
                    JsonValueKind.Object => (name.GetString()!, arguments.GetRawText()),
                    JsonValueKind.String when JsonDocument.Parse(arguments.GetString()!).RootElement.ValueKind == JsonValueKind.Object => (name.GetString()!, arguments.GetString()!),
                    _ => throw new JsonException("a tool call's arguments must be an object"),
                };
            }
        }

        return (name.GetString()!, "{}");
    }

    /// <summary>Where a marker, or a partial marker at the very end, begins in the text.</summary>
    protected static int MarkerStart(string text, string marker)
    {
        var at = text.IndexOf(marker, StringComparison.Ordinal);
        if (at >= 0)
        {
            return at;
        }

        for (var length = Math.Min(marker.Length - 1, text.Length); length > 0; length--)
        {
            if (text.AsSpan(text.Length - length).SequenceEqual(marker.AsSpan(0, length)))
            {
                return text.Length - length;
            }
        }

        return text.Length;
    }
}

/// <summary>The calls read from an answer, and its text beside them (null when there is none).</summary>
public sealed record ParsedOutput(string? Content, IReadOnlyList<ToolCall> Calls);
