namespace Appliance.Prompting;

/// <summary>
/// One message of a conversation. An assistant message may carry the tool calls it made (its content then often
/// empty); a tool message carries a call's result and the id of the call it answers. An assistant message of a
/// reasoning model may carry the thought it had before answering (<see cref="Reasoning"/>), which templates such as
/// Qwen3's render for the turns after the last question.
/// </summary>
public sealed record ChatMessage(string Role, string Content, IReadOnlyList<ToolCall>? ToolCalls = null, string? ToolCallId = null, string? Name = null)
{
    /// <summary>The thought of an earlier assistant turn, given to the template as <c>reasoning_content</c>.</summary>
    public string? Reasoning { get; init; }
}
