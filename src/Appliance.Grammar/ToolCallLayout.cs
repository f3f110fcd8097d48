namespace Appliance.Grammar;

/// <summary>
/// How a model writes tool calls, for constraining them: <see cref="Prefix"/>, the calls separated by
/// <see cref="Separator"/>, then <see cref="Suffix"/>; each call is <see cref="Open"/>, the function's name (a JSON
/// string when <see cref="QuotedName"/>, else bare), <see cref="BeforeArguments"/>, the arguments object and
/// <see cref="Close"/>.
/// </summary>
public sealed record ToolCallLayout(string Prefix, string Separator, string Suffix, string Open, bool QuotedName, string BeforeArguments, string Close)
{
    /// <summary>Calls as JSON objects: {"name": ..., "<paramref name="argumentsKey"/>": {...}}.</summary>
    public static ToolCallLayout JsonObjects(string prefix, string separator, string suffix, string argumentsKey = "arguments") =>
        new(prefix, separator, suffix, "{\"name\": ", true, $", \"{argumentsKey}\": ", "}");
}
