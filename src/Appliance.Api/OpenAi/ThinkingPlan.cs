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
    /// thinking budget must know where the thought ends: where the model may open one itself (Qwen3's default), the
    /// prompt opens it, as the model would, unless thinking was switched off.
    /// </summary>
    public static ThinkingPlan For(ServedModel model, string rendered, ReasoningRequest reasoning, bool constrained)
    {
        if (model.Thinking is not { } tags)
        {
            return new ThinkingPlan(null, ThinkingStart.Closed, rendered);
        }

        var start = tags.StartOf(rendered);
        return start == ThinkingStart.MayOpen && (constrained || reasoning.Budget is not null) && reasoning.Thinking != false
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
