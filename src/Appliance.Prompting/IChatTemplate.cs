namespace Appliance.Prompting;

/// <summary>Turns a conversation into the prompt text a model was trained on.</summary>
public interface IChatTemplate
{
    string Name { get; }

    /// <summary>The model's own template text (from which its tool-call format and thinking tags are recognised); null for built-ins.</summary>
    string? Source => null;

    /// <summary>The one template a client would render conversations with itself (a tokenizer's chat_template): the default of several.</summary>
    string? ClientTemplate => Source;

    /// <summary>The BOS token's text as tokenizer_config.json names it; null when unknown (built-in templates).</summary>
    string? BosToken => null;

    /// <summary>The EOS token's text as tokenizer_config.json names it; null when unknown (built-in templates).</summary>
    string? EosToken => null;

    /// <summary>
    /// Renders the messages; with <paramref name="addGenerationPrompt"/> it ends where the assistant's answer begins.
    /// <paramref name="tools"/> are the functions the model may call, passed to the template as transformers does;
    /// <paramref name="reasoning"/> switches a reasoning model's thinking where its template reads the switch.
    /// </summary>
    string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, IReadOnlyList<ToolDefinition>? tools = null, Reasoning.ReasoningSwitch? reasoning = null);
}
