namespace Appliance.Prompting.Reasoning;

/// <summary>
/// What a request asks of a reasoning model's template: thinking on or off (Qwen3's <c>enable_thinking</c>, DeepSeek
/// V3.1's and Granite's <c>thinking</c>; null leaves the template's default) and an effort (<c>reasoning_effort</c>, read
/// by the templates that know it). Templates that know neither variable ignore them.
/// </summary>
public sealed record ReasoningSwitch(bool? Thinking, string? Effort = null);
