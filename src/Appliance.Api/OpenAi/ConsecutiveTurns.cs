using Appliance.Prompting;

namespace Appliance.Api.OpenAi;

/// <summary>
/// Consecutive system, user or assistant turns joined into one. OpenAI takes [user, user] or [system, developer, user]
/// (a chat UI that dropped a failed answer, two system prompts from a framework), yet strict templates (Mistral, Gemma)
/// insist that roles alternate and refuse them.
/// </summary>
public static class ConsecutiveTurns
{
    public static IReadOnlyList<ChatMessage> Join(IReadOnlyList<ChatMessage> messages)
    {
        var joined = new List<ChatMessage>(messages.Count);
        foreach (var turn in messages)
        {
            if (joined.Count > 0 && joined[^1] is { ToolCalls: null } previous && turn.ToolCalls is null && previous.Role == turn.Role
                && turn.Role is "system" or "user" or "assistant")
            {
                joined[^1] = previous with
                {
                    Content = previous.Content + "\n\n" + turn.Content,
                    Name = previous.Name == turn.Name ? previous.Name : null,
                    Reasoning = previous.Reasoning ?? turn.Reasoning,
                };
                continue;
            }

            joined.Add(turn);
        }

        return joined;
    }
}
