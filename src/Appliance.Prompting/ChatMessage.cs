namespace Appliance.Prompting;

/// <summary>
/// One message of a conversation. An assistant message may carry the tool calls it made (its content then often
/// empty); a tool message carries a call's result and the id of the call it answers.
/// </summary>
public sealed record ChatMessage(string Role, string Content, IReadOnlyList<ToolCall>? ToolCalls = null, string? ToolCallId = null, string? Name = null);
