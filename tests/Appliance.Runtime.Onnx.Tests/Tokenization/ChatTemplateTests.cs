using Appliance.Prompting;
using Appliance.Prompting.Jinja;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>The models' own chat templates, rendered byte for byte as the real Jinja2 renders them.</summary>
public sealed class ChatTemplateTests
{
    private const string Today = "2026-11-28";

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var family in new[] { "llama3", "llama3_1", "llama3_2", "qwen3", "qwen2_5", "gemma3", "deepseek_v3", "mistral_nemo" })
        {
            for (var conversation = 0; conversation < Conversations.Length; conversation++)
            {
                data.Add(family, conversation);
            }
        }

        return data;
    }

    private static readonly ChatMessage[][] Conversations =
    [
        [new("user", "Hello!")],
        [new("system", "You are terse."), new("user", "What is 2+2?")],
        [new("system", "Be kind."), new("user", "Hi"), new("assistant", "Hello, how can I help?"), new("user", "Tell me a joke.")],
        [new("user", "  odd   whitespace \n\n and lines  "), new("assistant", "<think>\nreasoning\n</think>\n\nanswer"), new("user", "more?")],
        [new("user", "quotes \" ' and {{ braces }} and {% tags %} and unicode: naïve 日本 🚀")],
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Rendered_prompts_equal_jinja2(string family, int conversation)
    {
        var (source, bos, eos) = ReferenceChatTemplates.ForFamily(family);
        var template = new HuggingFaceChatTemplate(source, bos, eos, new FixedTime(DateTimeOffset.Parse(Today, System.Globalization.CultureInfo.InvariantCulture)));
        foreach (var addGenerationPrompt in new[] { true, false })
        {
            var expected = ReferenceChatTemplates.Render(source, Conversations[conversation], bos, eos, addGenerationPrompt, Today);
            Assert.Equal(expected, template.Render(Conversations[conversation], addGenerationPrompt));
        }
    }

    /// <summary>
    /// Statements transformers switches on and fine-tuned models' templates use: TRL's {% generation %} around the
    /// assistant's turns, and the loop controls {% break %} and {% continue %}.
    /// </summary>
    [Fact]
    public void Generation_blocks_and_loop_controls_render_as_jinja2_renders_them()
    {
        const string source = """
            {%- for message in messages %}
            {%- if message.role == 'system' %}{% continue %}{% endif %}
            {%- if message.role == 'assistant' %}<a>{% generation %}{% set inner = 'x' %}{{ message.content }}{{ inner }}{% endgeneration %}</a>
            {%- else %}<u>{{ message.content }}</u>
            {%- endif %}
            {%- if loop.index >= 4 %}{% break %}{% endif %}
            {%- endfor %}
            {{- inner is defined }}
            {%- for n in range(5) %}{% if n == 3 %}{% break %}{% endif %}{{ n }}{% else %}none{% endfor %}
            """;
        var conversation = Conversations[2].Concat([new ChatMessage("assistant", "Why?"), new ChatMessage("user", "never reached")]).ToArray();
        var template = new HuggingFaceChatTemplate(source, null, null, new FixedTime(DateTimeOffset.Parse(Today, System.Globalization.CultureInfo.InvariantCulture)));

        var expected = ReferenceChatTemplates.Render(source, conversation, null, null, addGenerationPrompt: false, Today);

        Assert.Equal(expected, template.Render(conversation, addGenerationPrompt: false));
        Assert.Contains("<a>Hello, how can I help?x</a>", expected, StringComparison.Ordinal);
        Assert.DoesNotContain("never reached", expected, StringComparison.Ordinal);
    }

    [Fact]
    public void Break_outside_a_loop_refuses_the_template_at_load() =>
        Assert.Throws<ChatTemplateException>(() => new HuggingFaceChatTemplate("{% if true %}{% break %}{% endif %}", null, null));

    [Fact]
    public void Raise_exception_becomes_a_rejection_for_the_caller()
    {
        var template = new HuggingFaceChatTemplate("{% if messages[0].role != 'user' %}{{ raise_exception('Conversations must start with a user message') }}{% endif %}ok", null, null);
        var error = Assert.Throws<ChatTemplateRejectedException>(() => template.Render([new ChatMessage("assistant", "x")]));
        Assert.Equal("Conversations must start with a user message", error.Message);
        Assert.Equal("ok", template.Render([new ChatMessage("user", "x")]));
    }

    [Theory]
    [InlineData("{% while true %}{% endwhile %}", "unsupported statement 'while'")]
    [InlineData("{{ x | frobnicate }}", "unknown filter 'frobnicate'")]
    [InlineData("{{ x is shiny }}", "unknown test 'shiny'")]
    [InlineData("{% if x %}never closed", "missing '{% endif %}'")]
    [InlineData("{{ 'unterminated }}", "never closed")]
    public void Unknown_syntax_fails_at_load(string source, string expected)
    {
        var error = Assert.Throws<ChatTemplateException>(() => new HuggingFaceChatTemplate(source, null, null));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{{ [1, 2, 3][::-1] }}|{{ 'abc'[1:] }}|{{ (7 // 2) ~ '/' ~ (7 % 3) }}|{{ 2 ** 10 }}", "[3, 2, 1]|bc|3/1|1024")]
    [InlineData("{% set ns = namespace(n=0) %}{% for i in range(4) if i is even %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", "2")]
    [InlineData("{{ {'a': 1, 'b': [true, none, 'x\"y']} | tojson }}", "{\"a\": 1, \"b\": [true, null, \"x\\\"y\"]}")]
    [InlineData("{% for k, v in {'x': 1, 'y': 2}.items() %}{{ loop.index }}{{ k }}={{ v }}{{ ',' if not loop.last }}{% endfor %}", "1x=1,2y=2")]
    [InlineData("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bo', punct='?') }}", "Hi Ann! Hi Bo?")]
    [InlineData("{{ 'a,b,,c'.split(',') | length }} {{ '  x '.strip() }} {{ 'Hello' if 'ell' in 'Hello' else 'no' }} {{ undefined_thing is defined }}", "4 x Hello False")]
    public void Expressions_follow_jinja_semantics(string source, string expected)
    {
        Assert.Equal(expected, new HuggingFaceChatTemplate(source, null, null).Render([]));
        Assert.Equal(expected, ReferenceChatTemplates.Render(source, [], null, null, true, Today));
    }
}
