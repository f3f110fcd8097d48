using Appliance.Api.Models;
using Appliance.Engine.Sampling;
using Appliance.Prompting.Reasoning;

namespace Appliance.Api.OpenAi;

/// <summary>
/// How one answer of a reasoning model is read: its thinking markers (null for a model that does not think), where the
/// prompt leaves the answer, and the prompt itself.
/// </summary>
internal sealed record ThinkingPlan(ThinkingTags? Tags, ThinkingStart Start, string Prompt)
{
    /// <summary>
    /// The plan for a rendered prompt. A constraint on the answer (a response format, a required tool call) or a
    /// thinking budget must know where the thought ends: where a model that thinks unless told may open one itself
    /// (Qwen3's default), the prompt opens it, as the model would, unless thinking was switched off. That needs the
    /// closing tag to be one token, as in every reasoning model's vocabulary (the constraint matches its tokens).
    /// <paramref name="prefill"/>, an answer's beginning the client wrote (Anthropic's last assistant turn), follows the
    /// rendered prompt: the output continues it.
    /// </summary>
    public static ThinkingPlan For(ServedModel model, string rendered, ReasoningRequest reasoning, bool constrained, string? prefill = null)
    {
        if (model.Thinking is not { } tags)
        {
            return new ThinkingPlan(null, ThinkingStart.Closed, rendered + prefill);
        }

        var start = tags.StartOf(rendered);
        if (!string.IsNullOrEmpty(prefill))
        {
            // A thought the prompt (or the prefill) opened goes on in the output unless the prefill closed it; a free
            // start is no longer free: the output continues the prefill's answer.
            start = prefill.Contains(tags.Close, StringComparison.Ordinal) ? ThinkingStart.Closed
                : prefill.Contains(tags.Open, StringComparison.Ordinal) || start == ThinkingStart.Open ? ThinkingStart.Open
                : ThinkingStart.Closed;
            return new ThinkingPlan(tags, start, rendered + prefill);
        }

        return start == ThinkingStart.MayOpen && tags.ThinksUnlessTold && (constrained || reasoning.Budget is not null) && reasoning.Thinking != false
            && model.Engine.Tokenizer.Encode(tags.Close).Count == 1
            ? new ThinkingPlan(tags, ThinkingStart.Open, rendered + tags.Open + "\n")
            : new ThinkingPlan(tags, start, rendered);
    }

    /// <summary>
    /// The constraint on the whole output: inside a thought, <paramref name="answer"/> applies once it is closed. With
    /// an answer to constrain, the thought may use at most half of <paramref name="maxTokens"/> (or the budget, if
    /// smaller), so that the answer keeps room to be complete.
    /// </summary>
    public ITokenConstraint? Constraint(ServedModel model, ITokenConstraint? answer, int maxTokens, int? budget)
    {
        if (Tags is null || Start != ThinkingStart.Open || (answer is null && budget is null))
        {
            return answer;
        }

        var close = model.Engine.Tokenizer.Encode(Tags.Close);
        if (close.Count == 0)
        {
            return answer;
        }

        var limit = answer is null ? budget : Math.Min(budget ?? int.MaxValue, Math.Max(maxTokens / 2, 1));
        return new ThinkingConstraint(close, answer, limit);
    }

    /// <summary>A reader of the output's thought, or null where the answer cannot hold one.</summary>
    public ThoughtReader? Reader() => Tags is null || Start == ThinkingStart.Closed ? null : new ThoughtReader(new ThinkingSplitter(Tags, Start));
}
