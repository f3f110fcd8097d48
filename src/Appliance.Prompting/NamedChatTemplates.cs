namespace Appliance.Prompting;

/// <summary>
/// A model that ships several named templates (tokenizer_config.json's chat_template as a list of {name, template},
/// or additional_chat_templates/*.jinja): as transformers chooses, "tool_use" when the request offers tools and the
/// model has one (and for conversations holding tool turns), "default" otherwise. Other names ("rag") are not used.
/// </summary>
public sealed class NamedChatTemplates(HuggingFaceChatTemplate standard, HuggingFaceChatTemplate? toolUse) : IChatTemplate
{
    public string Name => "model";

    /// <summary>Both texts, the tool template first: the tool-call format is recognised from it.</summary>
    public string? Source => toolUse is null ? standard.Source : toolUse.Source + "\n" + standard.Source;

    public string? ClientTemplate => standard.Source;

    public string? BosToken => standard.BosToken;

    public string? EosToken => standard.EosToken;

    /// <summary>
    /// The tool template for a request that offers tools, and for a conversation that already holds calls or results
    /// (a follow-up sent without tools): the default one never saw those turns.
    /// </summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, IReadOnlyList<ToolDefinition>? tools = null, Reasoning.ReasoningSwitch? reasoning = null) =>
        (toolUse is not null && (tools is { Count: > 0 } || messages.Any(m => m.Role == "tool" || m.ToolCalls is { Count: > 0 })) ? toolUse : standard)
            .Render(messages, addGenerationPrompt, tools, reasoning);
}
