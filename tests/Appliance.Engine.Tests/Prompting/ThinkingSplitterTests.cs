using Appliance.Prompting.Reasoning;

namespace Appliance.Engine.Tests.Prompting;

/// <summary>A reasoning model's output split into its thought and its answer, whole or streamed in any pieces.</summary>
public sealed class ThinkingSplitterTests
{
    public static TheoryData<ThinkingStart, string, string?, string> Outputs() => new()
    {
        // Qwen3: the model opens its thought itself.
        { ThinkingStart.MayOpen, "<think>\nLet me add: 2 + 2 = 4.\n</think>\n\nIt is 4.", "Let me add: 2 + 2 = 4.", "It is 4." },
        // DeepSeek R1 / V3.1 thinking: the prompt opened it; the output only closes it.
        { ThinkingStart.Open, "Two and two.\n\n</think>\n\n**4**", "Two and two.", "**4**" },
        // The prompt opened it and the model writes the opening tag again: one thought.
        { ThinkingStart.Open, "<think>\nhm\n</think>4", "hm", "4" },
        // No thought: the answer as written, leading space included.
        { ThinkingStart.MayOpen, " Just 4 <think> is not a marker here", null, " Just 4 <think> is not a marker here" },
        // An empty thought.
        { ThinkingStart.MayOpen, "<think>\n\n</think>\n\n4", string.Empty, "4" },
        // A thought cut short by max_tokens: all thought, no answer.
        { ThinkingStart.Open, "first I need to </th", "first I need to </th", string.Empty },
        // Angle brackets inside a thought that are not the closing tag.
        { ThinkingStart.Open, "is a<b and </thing> and </thin k>?\n</think>yes", "is a<b and </thing> and </thin k>?", "yes" },
        // Thinking switched off: the prompt closed an empty thought; a later tag is answer text.
        { ThinkingStart.Closed, "4 </think>", null, "4 </think>" },
        // Tool call after the thought (Hermes): the answer is the call, read by the tool parser.
        { ThinkingStart.MayOpen, "<think>\ncall it\n</think>\n\n<tool_call>\n{\"name\": \"f\"}\n</tool_call>", "call it", "<tool_call>\n{\"name\": \"f\"}\n</tool_call>" },
    };

    [Theory]
    [MemberData(nameof(Outputs))]
    public void A_whole_output_splits_into_thought_and_answer(ThinkingStart start, string output, string? thought, string answer)
    {
        var (reasoning, content) = ThinkingSplitter.Split(ThinkingTags.Think, start, output);
        Assert.Equal(thought, reasoning);
        Assert.Equal(answer, content);
    }

    [Theory]
    [MemberData(nameof(Outputs))]
    public void Streamed_in_any_pieces_it_splits_as_whole(ThinkingStart start, string output, string? thought, string answer)
    {
        var random = new Random(output.Length);
        for (var trial = 0; trial < 200; trial++)
        {
            var splitter = new ThinkingSplitter(ThinkingTags.Think, start);
            var (reasoning, content) = (new System.Text.StringBuilder(), new System.Text.StringBuilder());
            for (var at = 0; at < output.Length;)
            {
                var length = trial == 0 ? 1 : Math.Min(random.Next(1, 6), output.Length - at);
                var (r, c) = splitter.Add(output.Substring(at, length));
                reasoning.Append(r);
                content.Append(c);
                at += length;
            }

            var (restReasoning, restContent) = splitter.Finish();
            Assert.Equal(thought, splitter.Thought ? reasoning.Append(restReasoning).ToString() : null);
            Assert.Equal(answer, content.Append(restContent).ToString());
        }
    }

    [Fact]
    public void Answer_text_is_not_held_back_once_the_thought_is_closed()
    {
        var splitter = new ThinkingSplitter(ThinkingTags.Think, ThinkingStart.MayOpen);
        Assert.Equal((string.Empty, string.Empty), splitter.Add("<thi"));
        Assert.Equal(("abc", string.Empty), splitter.Add("nk>abc"));
        Assert.True(splitter.Thinking);
        Assert.Equal(string.Empty, splitter.Add("\n</").Reasoning); // may be the closing tag: held
        Assert.Equal((string.Empty, "4"), splitter.Add("think>\n\n4"));
        Assert.False(splitter.Thinking);
        Assert.Equal((string.Empty, " <"), splitter.Add(" <"));
    }
}
