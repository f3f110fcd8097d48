namespace Appliance.Prompting;

/// <summary>Renders a conversation into the prompt text a model was trained on.</summary>
public interface IChatTemplate
{
    string Name { get; }

    /// <summary>Renders the messages; with <paramref name="addGenerationPrompt"/> it ends where the assistant's answer begins.</summary>
    string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true);
}
