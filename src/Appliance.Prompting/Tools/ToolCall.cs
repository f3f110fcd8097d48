namespace Appliance.Prompting;

/// <summary>A call of a function tool: its id, the function's name and its arguments as JSON text.</summary>
public sealed record ToolCall(string Id, string Name, string Arguments);

/// <summary>
/// A function the model may call: name, description and the JSON Schema of its parameters (as JSON text). Freeform: a
/// custom tool of the Responses API, whose one input is text; the model sees a function with one string parameter.
/// </summary>
public sealed record ToolDefinition(string Name, string? Description, string Parameters, bool Strict = false, bool Freeform = false);
