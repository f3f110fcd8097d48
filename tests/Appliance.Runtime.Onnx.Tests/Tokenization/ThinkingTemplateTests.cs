using Appliance.Prompting;
using Appliance.Prompting.Reasoning;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>
/// Qwen3's real chat template with the thinking switch and earlier thoughts, rendered as Jinja2 renders it (transformers
/// passes enable_thinking as a keyword argument), and where each rendering leaves the answer.
/// </summary>
public sealed class ThinkingTemplateTests
{
    private const string Today = "2026-11-28";

    private static readonly ChatMessage[] Conversation =
    [
        new("user", "What is 17 * 3?"),
        new("assistant", "51") { Reasoning = "17 * 3 = 51.\nCheck: 50 + 1." },
        new("user", "And 17 * 4?"),
    ];

    [Theory]
    [InlineData(null, ThinkingStart.MayOpen)]
    [InlineData(true, ThinkingStart.MayOpen)]
    [InlineData(false, ThinkingStart.Closed)]
    public void Qwen3_renders_the_thinking_switch_as_jinja2_does_and_the_prompt_says_where_the_answer_starts(bool? thinking, ThinkingStart expected)
    {
        var (source, bos, eos) = ReferenceChatTemplates.ForFamily("qwen3");
        var template = new HuggingFaceChatTemplate(source, bos, eos, new FixedTime(DateTimeOffset.Parse(Today, System.Globalization.CultureInfo.InvariantCulture)));
        var variables = thinking is { } on ? new Dictionary<string, object?> { ["enable_thinking"] = on } : null;

        var rendered = template.Render(Conversation, reasoning: thinking is null ? null : new ReasoningSwitch(thinking));

        Assert.Equal(ReferenceChatTemplates.Render(source, Conversation, bos, eos, addGenerationPrompt: true, Today, variables: variables), rendered);
        Assert.Same(ThinkingTags.Think, ThinkingTags.FromTemplate(source));
        Assert.Equal(expected, ThinkingTags.Think.StartOf(rendered));
    }

    [Fact]
    public void An_earlier_thought_after_the_last_question_is_rendered_back_and_one_before_it_is_dropped()
    {
        var (source, bos, eos) = ReferenceChatTemplates.ForFamily("qwen3");
        var template = new HuggingFaceChatTemplate(source, bos, eos);
        ChatMessage[] toolTurn =
        [
            new("user", "Weather in Oslo?"),
            new("assistant", string.Empty, [new ToolCall("call_1", "weather", """{"city":"Oslo","days":3,"above":-1.5,"big":12345678901}""")]) { Reasoning = "I should call the weather tool." },
            new("tool", "rainy", ToolCallId: "call_1"),
        ];

        var rendered = template.Render(toolTurn, tools: [new ToolDefinition("weather", null, """{"type":"object","properties":{"city":{"type":"string"}}}""")]);
        Assert.Equal(ReferenceChatTemplates.Render(source, toolTurn, bos, eos, addGenerationPrompt: true, Today), ToolPrompt.Render(template, toolTurn, tools: null));

        // The thought belongs to the current question's tool loop, so Qwen3's template writes it back.
        Assert.Contains("<think>\nI should call the weather tool.\n</think>", rendered, StringComparison.Ordinal);
        Assert.DoesNotContain("17 * 3 = 51", template.Render(Conversation), StringComparison.Ordinal);
    }

    [Fact]
    public void Templates_that_never_close_a_thought_belong_to_models_that_do_not_think()
    {
        foreach (var family in new[] { "llama3_1", "qwen2_5", "gemma3", "deepseek_v3", "mistral_nemo" })
        {
            Assert.Null(ThinkingTags.FromTemplate(ReferenceChatTemplates.ForFamily(family).Template));
        }

        Assert.Equal(ThinkingStart.Open, ThinkingTags.Think.StartOf("<｜Assistant｜><think>\n"));
    }

    [Fact]
    public void A_template_that_only_strips_earlier_thoughts_belongs_to_a_model_that_thinks_only_where_its_prompt_opens_a_thought()
    {
        // Shaped like the templates of instruct models that came after a thinking one: no switch, no opened thought.
        const string StripsOnly = "{% for m in messages %}{% set c = m.content %}{% if '</think>' in c %}{% set c = c.split('</think>')[-1] %}{% endif %}{{ c }}{% endfor %}";
        var tags = ThinkingTags.FromTemplate(StripsOnly);

        Assert.Same(ThinkingTags.ThinkWhenOpened, tags);
        Assert.False(tags!.ThinksUnlessTold);
        Assert.True(ThinkingTags.FromTemplate(ReferenceChatTemplates.ForFamily("qwen3").Template)!.ThinksUnlessTold);
    }
}
