using System.Text;
using Appliance.Engine.Requests;
using Appliance.Prompting.Reasoning;

namespace Appliance.Api.OpenAi;

/// <summary>One answer's thought and answer as they stream, with the thought kept whole and its tokens counted.</summary>
internal sealed class ThoughtReader(ThinkingSplitter splitter)
{
    private readonly StringBuilder _thought = new();

    /// <summary>Tokens generated inside the thought, its markers included (OpenAI's reasoning_tokens).</summary>
    public int Tokens { get; private set; }

    /// <summary>Whether the output is inside its thought.</summary>
    public bool Thinking => splitter.Thinking;

    /// <summary>Whether the output has a thought (cheap: the streaming loops ask at every delta).</summary>
    public bool HasThought => splitter.Thought;

    /// <summary>The whole thought so far, or null when the output has none.</summary>
    public string? Thought => splitter.Thought ? _thought.ToString() : null;

    /// <summary>A delta's text split into thought and answer; on the last delta, with whatever was held back.</summary>
    public (string Reasoning, string Content) Add(GenerationDelta delta)
    {
        var (thinking, thought) = (splitter.Thinking, splitter.Thought);
        var (reasoning, content) = splitter.Add(delta.Text);
        if (thinking || splitter.Thinking || splitter.Thought != thought)
        {
            Tokens += delta.TokenIds.Count;
        }

        if (delta.FinishReason is not null)
        {
            var (restReasoning, restContent) = splitter.Finish();
            (reasoning, content) = (reasoning + restReasoning, content + restContent);
        }

        _thought.Append(reasoning);
        return (reasoning, content);
    }
}
