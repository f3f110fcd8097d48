using System.Text;

namespace Appliance.Prompting;

/// <summary>
/// ChatML (<c>&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n</c>): the default for models that ship no template of their own.
/// </summary>
public sealed class ChatMlTemplate : IChatTemplate
{
    public const string EndOfTurn = "<|im_end|>";

    public string Name => "chatml";

    /// <summary>The model's BOS text from its tokenizer_config.json (ChatML writes none; clients ask for it).</summary>
    public string? BosToken { get; init; }

    /// <summary>The model's EOS text from its tokenizer_config.json.</summary>
    public string? EosToken { get; init; }

    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, IReadOnlyList<ToolDefinition>? tools = null, Reasoning.ReasoningSwitch? reasoning = null)
    {
        if (tools is { Count: > 0 } || messages.Any(m => m.Role == "tool" || m.ToolCalls is { Count: > 0 }))
        {
            messages = ToolPrompt.Rewrite(messages, tools ?? []);
        }

        var prompt = new StringBuilder();
        foreach (var message in messages)
        {
            prompt.Append("<|im_start|>").Append(message.Role).Append('\n').Append(message.Content).Append(EndOfTurn).Append('\n');
        }

        if (addGenerationPrompt)
        {
            prompt.Append("<|im_start|>assistant\n");
        }

        return prompt.ToString();
    }
}
