using Appliance.Engine.Requests;

namespace Appliance.Api.OpenAi;

/// <summary>
/// A legacy completion's echo: each choice's text begins with its prompt, and with logprobs its tokens begin with the
/// prompt's, scored by the engine. The first prompt token has no score (nothing comes before it): its entry holds NaN,
/// which the logprobs writer turns into OpenAI's null.
/// </summary>
internal sealed class PromptEcho
{
    private readonly Dictionary<int, ChoiceInput> _pending;
    private readonly bool _logprobs;

    private PromptEcho(Dictionary<int, ChoiceInput> pending, bool logprobs) => (_pending, _logprobs) = (pending, logprobs);

    /// <summary>The echo of a request's choices; null when none echoes.</summary>
    public static PromptEcho? For(IReadOnlyList<ChoiceInput> choices, bool logprobs) =>
        choices.Any(c => c.Echo is not null) ? new PromptEcho(choices.Where(c => c.Echo is not null).ToDictionary(c => c.Index), logprobs) : null;

    /// <summary>
    /// A delta's text and logprobs, with the prompt's in front on the choice's first delta (the one that carries the
    /// prompt's scores); unchanged after.
    /// </summary>
    public (string Text, IReadOnlyList<TokenLogprob>? Logprobs) Prepend(int index, GenerationDelta delta)
    {
        if (!_pending.Remove(index, out var choice))
        {
            return (delta.Text, delta.Logprobs);
        }

        if (!_logprobs)
        {
            return (choice.Echo + delta.Text, delta.Logprobs);
        }

        List<TokenLogprob> logprobs = [new TokenLogprob(choice.PromptTokens[0], float.NaN, []), .. delta.PromptLogprobs ?? [], .. delta.Logprobs ?? []];
        return (choice.Echo + delta.Text, logprobs);
    }
}
