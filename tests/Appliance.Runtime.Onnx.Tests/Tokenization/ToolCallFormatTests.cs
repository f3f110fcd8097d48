using System.Text.Json;
using Appliance.Prompting;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>
/// Tool calls as the models' own templates write them are read back by the format recognised from the template; tools
/// reach the prompt; malformed calls come back as text.
/// </summary>
public sealed class ToolCallFormatTests
{
    private static readonly ToolDefinition Weather = new("get_weather", "Current weather for a city", """{"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}},"required":["city","unit"]}""");

    // Mistral's templates refuse call ids other than nine letters or digits; OpenAI's clients send any text.
    private static readonly ToolCall Call = new("a1B2c3D4e", "get_weather", """{"city":"Paris","unit":"c"}""");

    private const string Today = "2026-11-28";

    private static int _ids;

    /// <summary>
    /// Real templates that take tools themselves: Qwen3's and Qwen 2.5's (Hermes blocks), Llama 3.2's (Llama 3.1's JSON convention:
    /// tools in the first user turn, results as ipython turns) and Mistral Nemo's ([AVAILABLE_TOOLS], [TOOL_CALLS]).
    /// </summary>
    public static TheoryData<string, string, string> Templates() => new()
    {
        { "qwen3", "hermes", "<|im_end|>" },
        { "qwen2_5", "hermes", "<|im_end|>" },
        { "llama3_2", "llama3_json", "<|eot_id|>" },
        { "mistral_nemo", "mistral", "</s>" },
        { "deepseek_v3", "deepseek_v3", "<｜end▁of▁sentence｜>" },
    };

    [Theory]
    [InlineData("qwen3")]
    [InlineData("qwen2_5")]
    [InlineData("llama3_2")]
    [InlineData("mistral_nemo")]
    public void Tools_calls_and_results_render_as_jinja2_renders_them(string family)
    {
        var (source, bos, eos) = ReferenceChatTemplates.ForFamily(family);
        var template = new HuggingFaceChatTemplate(source, bos, eos, new FixedTime(DateTimeOffset.Parse(Today, System.Globalization.CultureInfo.InvariantCulture)));
        // Mistral's template wants the assistant's answer after the results before the next question.
        ChatMessage[] conversation =
        [
            new("system", "Answer in one sentence."), new("user", "Weather in Paris?"), new("assistant", string.Empty, [Call]),
            new("tool", """{"temperature": 21}""", ToolCallId: Call.Id), new("assistant", "It is 21 degrees in Paris."), new("user", "And in Lyon?"),
        ];

        foreach (var addGenerationPrompt in new[] { true, false })
        {
            var expected = ReferenceChatTemplates.Render(source, conversation, bos, eos, addGenerationPrompt, Today, [Weather]);
            Assert.Equal(expected, template.Render(conversation, addGenerationPrompt, [Weather]));
        }
    }

    [Theory]
    [MemberData(nameof(Templates))]
    public void A_call_the_template_writes_is_read_back_by_its_format(string family, string format, string endOfTurn)
    {
        var (source, bos, eos) = ReferenceChatTemplates.ForFamily(family);
        var template = new HuggingFaceChatTemplate(source, bos, eos);
        var parser = ToolCallFormat.FromTemplate(source);
        Assert.Equal(format, parser.Name);

        // The assistant's turn as the template writes it: the conversation with the call, less the one before it
        // (Mistral's has no generation prompt: the answer follows [/INST]).
        ChatMessage[] asked = [new("user", "Weather in Paris?")];
        var before = template.Render(asked, addGenerationPrompt: format != "mistral", [Weather]);
        var after = template.Render([.. asked, new("assistant", string.Empty, [Call])], addGenerationPrompt: false, [Weather]);

        Assert.StartsWith(before, after, StringComparison.Ordinal);
        var written = after[before.Length..];
        if (written.IndexOf(endOfTurn, StringComparison.Ordinal) is var end and >= 0)
        {
            written = written[..end]; // the end token stops generation: never in the output (DeepSeek's template omits it after one call)
        }

        var parsed = parser.Parse(written, () => $"id{Interlocked.Increment(ref _ids)}");
        var call = Assert.Single(parsed.Calls);
        Assert.Equal("get_weather", call.Name);
        Assert.True(JsonElement.DeepEquals(JsonDocument.Parse(Call.Arguments).RootElement, JsonDocument.Parse(call.Arguments).RootElement), call.Arguments);
        Assert.True(parsed.Content is null || parsed.Content.StartsWith("<think>", StringComparison.Ordinal), parsed.Content); // Qwen3 writes an empty thought first
    }

    [Theory]
    [InlineData("qwen3")]
    [InlineData("llama3_1")]
    [InlineData("gemma3")]
    public void The_prompt_shows_the_tools_and_the_tool_results(string family)
    {
        var (source, bos, eos) = ReferenceChatTemplates.ForFamily(family);
        var prompt = ToolPrompt.Render(new HuggingFaceChatTemplate(source, bos, eos),
            [new("user", "Weather in Paris?"), new("assistant", string.Empty, [Call]), new("tool", """{"temperature": 21}""", ToolCallId: "call_1"), new("user", "Thanks")],
            [Weather]);

        Assert.Contains("get_weather", prompt, StringComparison.Ordinal);
        Assert.Contains("Current weather for a city", prompt, StringComparison.Ordinal);
        Assert.Contains("\"temperature\": 21", prompt, StringComparison.Ordinal);
        Assert.Contains("Paris", prompt, StringComparison.Ordinal); // the earlier call's arguments
    }

    [Fact]
    public void OpenAI_call_ids_reach_Mistral_s_template_as_the_nine_characters_it_demands()
    {
        var (source, bos, eos) = ReferenceChatTemplates.ForFamily("mistral_nemo");
        var template = new HuggingFaceChatTemplate(source, bos, eos);
        ChatMessage[] conversation =
        [
            new("user", "Weather in Paris?"), new("assistant", string.Empty, [Call with { Id = "call_Q7Hx2abc" }]),
            new("tool", """{"temperature": 21}""", ToolCallId: "call_Q7Hx2abc"), new("assistant", "21 degrees."), new("user", "Thanks"),
        ];
        Assert.Throws<Appliance.Prompting.Jinja.ChatTemplateRejectedException>(() => template.Render(conversation, addGenerationPrompt: false, [Weather]));

        var prompt = ToolPrompt.Render(template, conversation, [Weather], addGenerationPrompt: false);
        var id = System.Text.RegularExpressions.Regex.Match(prompt, "\"id\": \"([0-9A-Za-z]{9})\"");
        Assert.True(id.Success, prompt);
        Assert.Contains($"\"call_id\": \"{id.Groups[1].Value}\"", prompt, StringComparison.Ordinal); // the result still names its call
    }

    [Fact]
    public void DeepSeek_s_template_renders_calls_and_results_as_jinja2_does_and_the_tools_reach_the_system_text()
    {
        var (source, bos, eos) = ReferenceChatTemplates.ForFamily("deepseek_v3");
        var template = new HuggingFaceChatTemplate(source, bos, eos);
        ChatMessage[] conversation =
        [
            new("system", "Answer in one sentence."), new("user", "Weather in Paris?"), new("assistant", "Let me look.", [Call]),
            new("tool", """{"temperature": 21}""", ToolCallId: Call.Id), new("assistant", "It is 21 degrees in Paris."), new("user", "And in Lyon?"),
        ];

        // Its template writes the arguments by concatenation and shows a turn's calls only when its content is none:
        // the calls reach it so (a preamble beside them is left out), and it renders as Jinja2 renders them so.
        foreach (var addGenerationPrompt in new[] { true, false })
        {
            var expected = ReferenceChatTemplates.Render(source, conversation, bos, eos, addGenerationPrompt, Today, callsAsSent: true);
            Assert.Equal(expected, template.Render(conversation, addGenerationPrompt));
        }

        Assert.Equal(ToolCallFormat.DeepSeekV3, ToolCallFormat.FromTemplate(source));
        var prompt = ToolPrompt.Render(template, conversation, [Weather]);
        Assert.StartsWith(bos + "Answer in one sentence.\n\n## Tools\n", prompt, StringComparison.Ordinal);
        Assert.Contains("```json\n{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Current weather for a city\"", prompt, StringComparison.Ordinal);
        Assert.Contains("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜><function name>\n```json\n", prompt, StringComparison.Ordinal);
        Assert.Contains("<｜User｜>Weather in Paris?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\":\"Paris\",\"unit\":\"c\"}\n```<｜tool▁call▁end｜>", prompt, StringComparison.Ordinal);
        Assert.Contains("<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{\"temperature\": 21}<｜tool▁output▁end｜>", prompt, StringComparison.Ordinal);
        Assert.EndsWith("<｜User｜>And in Lyon?<｜Assistant｜>", prompt, StringComparison.Ordinal);
        Assert.DoesNotContain("Let me look.", prompt, StringComparison.Ordinal);

        // A model set to read Hermes calls (Models:<id>:ToolCallFormat) is prompted in Hermes' convention, not DeepSeek's.
        var hermes = ToolPrompt.Render(template, conversation, [Weather], format: ToolCallFormat.Hermes);
        Assert.Contains("<tool_call>", hermes, StringComparison.Ordinal);
        Assert.DoesNotContain(DeepSeekCallsBegin, hermes, StringComparison.Ordinal);
    }

    private const string DeepSeekCallsBegin = "<｜tool▁calls▁begin｜>";

    [Fact]
    public void A_later_DeepSeek_template_that_writes_the_name_first_is_taken_for_V3_1()
    {
        const string NameFirst = "{{'<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>'+ tool['function']['name'] + '<｜tool▁sep｜>' + tool['function']['arguments'] + '<｜tool▁call▁end｜>'}}";
        Assert.Equal(ToolCallFormat.DeepSeekV31, ToolCallFormat.FromTemplate(NameFirst));
    }

    /// <summary>
    /// DeepSeek V3's real template with its calls written as V3.1's template writes them (the name, the separator
    /// token, the arguments as they were sent, calls chained without a newline); the rest of V3.1's template is V3's.
    /// </summary>
    private static (string Source, string? Bos, string? Eos) DeepSeekV31Template()
    {
        var (source, bos, eos) = ReferenceChatTemplates.ForFamily("deepseek_v3");
        const string V3Call = "'<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'";
        const string V31Call = "'<｜tool▁call▁begin｜>' + tool['function']['name'] + '<｜tool▁sep｜>' + tool['function']['arguments'] + '<｜tool▁call▁end｜>'";
        var firstCall = "'<｜Assistant｜><｜tool▁calls▁begin｜>" + V3Call[1..];
        var laterCall = "'\n' + " + V3Call;
        Assert.Contains(firstCall, source, StringComparison.Ordinal);
        Assert.Contains(laterCall, source, StringComparison.Ordinal);
        var derived = source.Replace(laterCall, V31Call, StringComparison.Ordinal)
            .Replace(firstCall, "'<｜Assistant｜><｜tool▁calls▁begin｜>" + V31Call[1..], StringComparison.Ordinal);
        return (derived, bos, eos);
    }

    [Fact]
    public void DeepSeek_V3_1_s_layout_renders_as_jinja2_renders_it_is_read_back_and_the_tools_are_described_as_its_card_says()
    {
        var (source, bos, eos) = DeepSeekV31Template();
        Assert.Equal(ToolCallFormat.DeepSeekV31, ToolCallFormat.FromTemplate(source));
        var template = new HuggingFaceChatTemplate(source, bos, eos);
        var second = Call with { Id = "b2", Arguments = """{"city":"Lyon","unit":"c"}""" };
        ChatMessage[] conversation =
        [
            new("system", "Answer in one sentence."), new("user", "Weather in Paris and Lyon?"), new("assistant", string.Empty, [Call, second]),
            new("tool", """{"temperature": 21}""", ToolCallId: Call.Id), new("tool", """{"temperature": 19}""", ToolCallId: second.Id),
            new("assistant", "21 and 19 degrees."), new("user", "And in Nice?"),
        ];
        foreach (var addGenerationPrompt in new[] { true, false })
        {
            var expected = ReferenceChatTemplates.Render(source, conversation, bos, eos, addGenerationPrompt, Today, callsAsSent: true);
            Assert.Equal(expected, template.Render(conversation, addGenerationPrompt));
        }

        // The calls as the template wrote them are read back by the format it was recognised as.
        var rendered = template.Render(conversation, addGenerationPrompt: false);
        var opened = rendered.IndexOf(DeepSeekCallsBegin, StringComparison.Ordinal);
        var written = rendered[opened..rendered.IndexOf("<｜end▁of▁sentence｜>", opened, StringComparison.Ordinal)];
        var parsed = ToolCallFormat.DeepSeekV31.Parse(written, () => "id");
        Assert.Equal(["get_weather", "get_weather"], parsed.Calls.Select(c => c.Name));
        Assert.Equal([Call.Arguments, second.Arguments], parsed.Calls.Select(c => c.Arguments));
        Assert.Null(parsed.Content);

        var prompt = ToolPrompt.Render(template, conversation, [Weather]);
        Assert.StartsWith(bos + "Answer in one sentence.\n\n## Tools\nYou have access to the following tools:\n\n### get_weather\nDescription: Current weather for a city\n\n"
            + "Parameters: {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}, \"unit\": {\"enum\": [\"c\", \"f\"]}}, \"required\": [\"city\", \"unit\"]}\n\n"
            + "IMPORTANT: ALWAYS adhere to this exact format for tool use:\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>tool_call_name<｜tool▁sep｜>tool_call_arguments<｜tool▁call▁end｜>",
            prompt, StringComparison.Ordinal);
        Assert.Contains("<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\":\"Paris\",\"unit\":\"c\"}<｜tool▁call▁end｜><｜tool▁call▁begin｜>get_weather", prompt, StringComparison.Ordinal);
        Assert.True(ToolPrompt.UsesModelFormat(template));

        // Set to read Hermes calls, the same model is prompted in Hermes' convention.
        Assert.DoesNotContain("## Tools", ToolPrompt.Render(template, conversation, [Weather], format: ToolCallFormat.Hermes), StringComparison.Ordinal);
    }

    [Fact]
    public void DeepSeek_V3_1_reads_chained_calls_the_text_before_them_and_a_last_call_that_lost_its_end()
    {
        var parsed = ToolCallFormat.DeepSeekV31.Parse(
            "Let me look.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>a<｜tool▁sep｜>{\"x\": 1}<｜tool▁call▁end｜>"
            + "<｜tool▁call▁begin｜>b<｜tool▁sep｜>{\"y\": [2]}",
            () => "id");

        Assert.Equal(["a", "b"], parsed.Calls.Select(c => c.Name));
        Assert.Equal(["""{"x": 1}""", """{"y": [2]}"""], parsed.Calls.Select(c => c.Arguments));
        Assert.Equal("Let me look.", parsed.Content);

        // A call that closes the block without its own end marker, and text after the block.
        var closed = ToolCallFormat.DeepSeekV31.Parse(
            "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>a<｜tool▁sep｜>{\"x\": 1}<｜tool▁calls▁end｜> Done.", () => "id");
        Assert.Equal(("a", """{"x": 1}"""), (Assert.Single(closed.Calls).Name, closed.Calls[0].Arguments));
        Assert.Equal("Done.", closed.Content);
    }

    [Fact]
    public void DeepSeek_reads_calls_in_two_blocks_and_a_last_call_cut_in_its_closing_fence()
    {
        var parsed = ToolCallFormat.DeepSeekV3.Parse(
            "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>a\n```json\n{\"x\": 1}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"
            + "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>b\n```json\n{\"y\": 2}\n``",
            () => "id");

        Assert.Equal(["a", "b"], parsed.Calls.Select(c => c.Name));
        Assert.Equal("""{"y": 2}""", parsed.Calls[1].Arguments);
        Assert.Null(parsed.Content);
    }

    [Fact]
    public void DeepSeek_reads_its_calls_and_keeps_the_text_before_them()
    {
        var parsed = ToolCallFormat.DeepSeekV3.Parse(
            "Let me look.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>a\n```json\n{\"x\": 1}\n```<｜tool▁call▁end｜>\n"
            + "<｜tool▁call▁begin｜>function<｜tool▁sep｜>b\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
            () => "id");

        Assert.Equal(["a", "b"], parsed.Calls.Select(c => c.Name));
        Assert.Equal("""{"x": 1}""", parsed.Calls[0].Arguments);
        Assert.Equal("Let me look.", parsed.Content);
    }

    [Fact]
    public void Hermes_reads_several_blocks_and_keeps_the_text_around_them()
    {
        var parsed = ToolCallFormat.Hermes.Parse("Let me check.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": \"{\\\"y\\\": 2}\"}\n</tool_call>", () => "id");

        Assert.Equal(["a", "b"], parsed.Calls.Select(c => c.Name));
        Assert.Equal("""{"y": 2}""", parsed.Calls[1].Arguments);
        Assert.Equal("Let me check.", parsed.Content);
    }

    [Fact]
    public void Mistral_reads_its_list()
    {
        var parsed = ToolCallFormat.Mistral.Parse("""[TOOL_CALLS][{"name": "a", "arguments": {"x": 1}}, {"name": "b", "arguments": {}}]""", () => "id");

        Assert.Equal(["a", "b"], parsed.Calls.Select(c => c.Name));
        Assert.Null(parsed.Content);
    }

    [Fact]
    public void Llama3_reads_calls_separated_by_semicolons_after_the_python_tag()
    {
        var parsed = ToolCallFormat.Llama3Json.Parse("""<|python_tag|>{"name": "a", "parameters": {"x": 1}}; {"name": "b", "parameters": {}}""", () => "id");

        Assert.Equal(["a", "b"], parsed.Calls.Select(c => c.Name));
        Assert.Equal("""{"x": 1}""", parsed.Calls[0].Arguments);
    }

    [Fact]
    public void Llama3_reads_calls_whose_arguments_are_not_ASCII()
    {
        var parsed = ToolCallFormat.Llama3Json.Parse("""{"name": "a", "parameters": {"city": "Zürich 中文"}}; {"name": "b", "parameters": {"x": "é"}}""", () => "id");

        Assert.Equal(["a", "b"], parsed.Calls.Select(c => c.Name));
        Assert.Equal("""{"city": "Zürich 中文"}""", parsed.Calls[0].Arguments);
    }

    [Theory]
    [InlineData("llama3_json", "{\"name\": \"Alice\", \"age\": 30}")]
    [InlineData("hermes", "<tool_call>\n{\"name\": \"a\", \"arguments\": {\n</tool_call>")]
    [InlineData("hermes", "<tool_call>\n{\"arguments\": {}}\n</tool_call>")]
    [InlineData("hermes", "<tool_call>\n{\"name\": \"a\", \"arguments\": [1]}\n</tool_call>")]
    [InlineData("llama3_json", "{\"name\": \"a\", \"parameters\": {\"x\": 1}")]
    [InlineData("llama3_json", "{\"name\": \"a\", \"parameters\": {}} and then some prose")]
    [InlineData("mistral", "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {]")]
    [InlineData("deepseek_v3", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>a\n```json\n{\"x\": \n```<｜tool▁call▁end｜>")]
    [InlineData("deepseek_v3", "<｜tool▁call▁begin｜>function<｜tool▁sep｜>\n```json\n{}\n```<｜tool▁call▁end｜>")]
    [InlineData("deepseek_v3", "<｜tool▁call▁begin｜>function a\n```json\n{}\n```<｜tool▁call▁end｜>")]
    [InlineData("deepseek_v3", "<｜tool▁call▁begin｜>function<｜tool▁sep｜>a\n```json\n[1]\n```<｜tool▁call▁end｜>")]
    [InlineData("deepseek_v3", "<｜tool▁call▁begin｜>function<｜tool▁sep｜>a\n```json\n{}\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>b\n```json\n{}\n```<｜tool▁call▁end｜>")]
    [InlineData("deepseek_v3_1", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>a<｜tool▁sep｜>{\"x\": <｜tool▁call▁end｜>")]
    [InlineData("deepseek_v3_1", "<｜tool▁call▁begin｜><｜tool▁sep｜>{}<｜tool▁call▁end｜>")]
    [InlineData("deepseek_v3_1", "<｜tool▁call▁begin｜>a {}<｜tool▁call▁end｜>")]
    [InlineData("deepseek_v3_1", "<｜tool▁call▁begin｜>a<｜tool▁sep｜>[1]<｜tool▁call▁end｜>")]
    [InlineData("deepseek_v3_1", "<｜tool▁call▁begin｜>a<｜tool▁sep｜>{}<｜tool▁call▁begin｜>b<｜tool▁sep｜>{}<｜tool▁call▁end｜>")]
    [InlineData("deepseek_v3_1", "<｜tool▁call▁begin｜>a<｜tool▁sep｜>{}<｜tool▁call▁end｜> and then <｜tool▁call▁begin｜>b<｜tool▁sep｜>{}<｜tool▁call▁end｜>")]
    [InlineData("deepseek_v3_1", "<｜tool▁call▁begin｜>a<｜tool▁sep｜>{\"x\": 1")]
    public void Malformed_calls_come_back_as_the_answers_text(string format, string output)
    {
        var parsed = ToolCallFormat.Named(format)!.Parse(output, () => "id");

        Assert.Empty(parsed.Calls);
        Assert.Equal(output, parsed.Content);
    }

    [Theory]
    [InlineData("hermes", "Plain answer.", 13)]
    [InlineData("hermes", "Checking <tool", 9)]
    [InlineData("hermes", "Checking <tool_call>\n{\"na", 9)]
    [InlineData("llama3_json", "Plain answer.", 13)]
    [InlineData("llama3_json", "  {\"name\"", 0)]
    [InlineData("llama3_json", "<|pyth", 0)]
    [InlineData("mistral", "Sure [TOOL_", 5)]
    [InlineData("deepseek_v3", "Plain answer.", 13)]
    [InlineData("deepseek_v3", "Sure <｜tool▁ca", 5)]
    [InlineData("deepseek_v3", "x<｜tool▁call▁begin｜>function", 1)]
    [InlineData("deepseek_v3_1", "Plain answer.", 13)]
    [InlineData("deepseek_v3_1", "Sure <｜tool▁ca", 5)]
    [InlineData("deepseek_v3_1", "x<｜tool▁call▁begin｜>get", 1)]
    public void Streaming_holds_back_only_what_may_be_a_call(string format, string text, int holdFrom) =>
        Assert.Equal(holdFrom, ToolCallFormat.Named(format)!.HoldFrom(text));

    [Fact]
    public void A_template_that_knows_no_tools_gets_them_in_the_system_message_and_tool_turns_as_text()
    {
        var prompt = ToolPrompt.Render(new ChatMlTemplate(),
            [new("system", "Be brief."), new("user", "Weather?"), new("assistant", string.Empty, [Call]), new("tool", "21 degrees", ToolCallId: "call_1")],
            [Weather]);

        Assert.Contains("Be brief.\n\nYou can call these functions", prompt, StringComparison.Ordinal);
        Assert.Contains("\"name\":\"get_weather\"", prompt, StringComparison.Ordinal);
        Assert.Contains("<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"unit\":\"c\"}}\n</tool_call>", prompt, StringComparison.Ordinal);
        Assert.Contains("<|im_start|>user\n<tool_response>\n21 degrees\n</tool_response><|im_end|>", prompt, StringComparison.Ordinal);
    }
}
