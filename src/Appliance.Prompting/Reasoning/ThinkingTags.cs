namespace Appliance.Prompting.Reasoning;

/// <summary>Where a rendered prompt leaves the model: already thinking, told not to think, or free to start.</summary>
public enum ThinkingStart
{
    /// <summary>The prompt opened a thought (DeepSeek R1's and V3.1's templates in thinking mode): the answer starts inside it.</summary>
    Open,

    /// <summary>The prompt holds an empty, closed thought (Qwen3 with thinking off): the answer has no thinking.</summary>
    Closed,

    /// <summary>The model may open a thought with its first tokens (Qwen3's default) or answer directly.</summary>
    MayOpen,
}

/// <summary>
/// How a reasoning model marks its thinking: the text between <c>&lt;think&gt;</c> and <c>&lt;/think&gt;</c> before its
/// answer (Qwen3, QwQ, DeepSeek R1 and V3.1). The appliance returns that text apart from the answer, reads tool calls
/// only in the answer, and applies a response format or a required tool call after the thought.
/// </summary>
public sealed class ThinkingTags
{
    /// <summary>The tags of a model that thinks unless told not to (Qwen3's hybrid templates, or an operator's "think").</summary>
    public static readonly ThinkingTags Think = new("<think>", "</think>", thinksUnlessTold: true);

    /// <summary>The tags of a model whose template only strips earlier thoughts: it thinks where its prompt opens a thought.</summary>
    public static readonly ThinkingTags ThinkWhenOpened = new("<think>", "</think>", thinksUnlessTold: false);

    private ThinkingTags(string open, string close, bool thinksUnlessTold) => (Open, Close, ThinksUnlessTold) = (open, close, thinksUnlessTold);

    /// <summary>
    /// Whether the model opens a thought itself when its prompt leaves it free to (so a constraint on its answer must
    /// wait for the thought): a template with a thinking switch says so; one that only strips thoughts does not.
    /// </summary>
    public bool ThinksUnlessTold { get; }

    public string Open { get; }

    public string Close { get; }

    public string Name => "think";

    /// <summary>
    /// The markers a chat template writes or strips: a template that mentions the closing tag (to drop earlier thoughts
    /// from the history, or to close an empty one when thinking is off) belongs to a model that may think; one that also
    /// reads Qwen3's enable_thinking switch thinks unless told not to.
    /// </summary>
    public static ThinkingTags? FromTemplate(string? source) =>
        source is null || !source.Contains(Think.Close, StringComparison.Ordinal) ? null
        : source.Contains("enable_thinking", StringComparison.Ordinal) ? Think
        : ThinkWhenOpened;

    /// <summary>A configured setting: "think", "none" (null), or null when the name is unknown ("auto" is the caller's).</summary>
    public static bool TryNamed(string setting, out ThinkingTags? tags)
    {
        tags = setting == Think.Name ? Think : null;
        return setting is "think" or "none";
    }

    /// <summary>Where the prompt leaves the answer: the last marker it holds, when nothing but whitespace follows it.</summary>
    public ThinkingStart StartOf(string prompt)
    {
        var end = prompt.AsSpan().TrimEnd();
        if (end.EndsWith(Open, StringComparison.Ordinal))
        {
            return ThinkingStart.Open;
        }

        return end.EndsWith(Close, StringComparison.Ordinal) ? ThinkingStart.Closed : ThinkingStart.MayOpen;
    }
}
