namespace Appliance.Prompting;

/// <summary>A call of a function tool: its id, the function's name and its arguments as JSON text.</summary>
public sealed record ToolCall(string Id, string Name, string Arguments);

/// <summary>
/// A function the model may call: name, description and the JSON Schema of its parameters (as JSON text). Freeform: a
/// custom tool (OpenAI's freeform tools), whose one input is text; the model sees a function with one string parameter.
/// InputPattern: the regular expression (as the client wrote it) a custom tool's whole input must match, when its format is a regex grammar;
/// InputGrammar: the Lark grammar its input must follow, when its format is a Lark grammar.
/// </summary>
public sealed record ToolDefinition(string Name, string? Description, string Parameters, bool Strict = false, bool Freeform = false, string? InputPattern = null, string? InputGrammar = null);
