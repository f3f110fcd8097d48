using System.Text.Json;
using Appliance.Api.OpenAi;
using Appliance.Prompting;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// While streaming with tools, plain text goes out as it comes and what may be a call waits for the answer's end; a
/// forced call (the grammar keeps it whole) streams while it is generated.
/// </summary>
public sealed class ToolCallStreamTests
{
    [Fact]
    public void Text_before_a_call_streams_and_the_call_is_held()
    {
        var stream = new ToolCallStream(ToolCallFormat.Hermes);

        Assert.Equal("Let me look. ", stream.Add("Let me look. ", null).Text);
        Assert.Equal(string.Empty, stream.Add("<tool", null).Text); // could be the start of a call
        Assert.Equal(string.Empty, stream.Add("_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>", null).Text);

        var parsed = ToolCallFormat.Hermes.Parse(stream.Text, () => "id");
        Assert.Equal("f", Assert.Single(parsed.Calls).Name);
        Assert.Null(stream.Rest(calledTools: true).Text); // the held call is not sent as text
    }

    [Fact]
    public void Held_text_that_was_no_call_is_sent_at_the_end()
    {
        var stream = new ToolCallStream(ToolCallFormat.Hermes);

        Assert.Equal("a ", stream.Add("a <to", null).Text);
        Assert.Equal("<tox", stream.Add("x", null).Text); // no longer a marker's beginning: released at once
        Assert.Equal(" ", stream.Add(" <tool_call> not json", null).Text); // held from the marker on
        Assert.Equal("<tool_call> not json", stream.Rest(calledTools: false).Text);
    }

    [Fact]
    public void Llama3_holds_an_answer_that_opens_like_a_call_and_streams_one_that_does_not()
    {
        var held = new ToolCallStream(ToolCallFormat.Llama3Json);
        Assert.Equal(string.Empty, held.Add("{\"name\"", null).Text);

        var plain = new ToolCallStream(ToolCallFormat.Llama3Json);
        Assert.Equal("Paris is", plain.Add("Paris is", null).Text);
        Assert.Equal(" {sunny}", plain.Add(" {sunny}", null).Text);
    }

    [Fact]
    public void A_forced_call_opens_once_its_name_is_complete_and_its_arguments_stream_as_generated()
    {
        var ids = 0;
        var stream = new ToolCallStream(ToolCallFormat.Hermes, incremental: true, () => $"call_{++ids}");
        var sent = new List<CallDelta>();
        foreach (var token in new[] { "<tool_call>\n", "{\"name\": \"get_", "weather\"", ", \"arguments\": ", "{\"city\": \"P", "aris {", "}\"", "}", "}\n</tool_call>" })
        {
            Assert.Equal(string.Empty, stream.Add(token, null).Text); // a forced answer sends no text
            sent.AddRange(stream.CallDeltas());
        }

        // Nothing before the name was whole; then the opening; then the arguments as they came, a brace in a string
        // not taken for their end.
        var opening = Assert.Single(sent, d => d.Opening is not null);
        Assert.Equal(("call_1", "get_weather"), (opening.Opening!.Id, opening.Opening.Name));
        Assert.Equal(0, sent.IndexOf(opening));
        Assert.Equal(["{\"city\": \"P", "aris {", "}\"", "}"], sent.Skip(1).Select(d => d.Arguments));

        var (rest, calls, complete) = stream.Finish(ToolCallFormat.Hermes.Parse(stream.Text, () => "unused"));
        Assert.Empty(rest);
        Assert.True(complete);
        Assert.Equal(new ToolCall("call_1", "get_weather", "{\"city\": \"Paris {}\"}"), Assert.Single(calls));
        Assert.Null(stream.Rest(calledTools: true).Text);
    }

    [Fact]
    public void Parallel_forced_calls_open_in_turn_and_a_call_cut_short_keeps_what_was_streamed()
    {
        var ids = 0;
        var stream = new ToolCallStream(ToolCallFormat.Mistral, incremental: true, () => $"id{++ids}");
        stream.Add("[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": [1, {\"y\": 2}]}}, {\"name\": \"b\", \"arguments\": {\"z\": \"q", null);
        var sent = stream.CallDeltas();

        Assert.Equal([(0, "a", ""), (0, null, "{\"x\": [1, {\"y\": 2}]}"), (1, "b", ""), (1, null, "{\"z\": \"q")],
            sent.Select(d => (d.CallIndex, d.Opening?.Name, d.Arguments)));

        // max_tokens ended the answer inside the second call: it does not parse, and the calls stay as the client got them.
        var (rest, calls, complete) = stream.Finish(ToolCallFormat.Mistral.Parse(stream.Text, () => "unused"));
        Assert.Empty(rest);
        Assert.False(complete);
        Assert.Equal([new ToolCall("id1", "a", "{\"x\": [1, {\"y\": 2}]}"), new ToolCall("id2", "b", "{\"z\": \"q")], calls);
    }

    [Fact]
    public void A_forced_DeepSeek_V3_call_opens_once_the_fence_after_its_name_is_whole_and_streams_its_arguments()
    {
        var stream = new ToolCallStream(ToolCallFormat.DeepSeekV3, incremental: true, () => "call_1");
        var sent = new List<CallDelta>();
        string[] tokens =
        [
            "<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "function", "<｜tool▁sep｜>", "get_", "weather", "\n", "```", "json", "\n",
            "{\"city\": \"P", "aris {", "}\"", "}", "\n", "```", "<｜tool▁call▁end｜>", "<｜tool▁calls▁end｜>",
        ];
        foreach (var token in tokens)
        {
            Assert.Equal(string.Empty, stream.Add(token, null).Text);
            var deltas = stream.CallDeltas();
            // The name could still go on until the fence after it has come whole.
            Assert.True(deltas.All(d => d.Opening is null) || token == "\n", $"opened at {token}");
            sent.AddRange(deltas);
        }

        Assert.Equal([(0, "get_weather", ""), (0, null, "{\"city\": \"P"), (0, null, "aris {"), (0, null, "}\""), (0, null, "}")],
            sent.Select(d => (d.CallIndex, d.Opening?.Name, d.Arguments)));
        var (rest, calls, complete) = stream.Finish(ToolCallFormat.DeepSeekV3.Parse(stream.Text, () => "unused"));
        Assert.Empty(rest);
        Assert.True(complete);
        Assert.Equal(new ToolCall("call_1", "get_weather", "{\"city\": \"Paris {}\"}"), Assert.Single(calls));
    }

    [Fact]
    public void Chained_DeepSeek_V31_calls_open_in_turn_and_one_cut_short_keeps_what_was_streamed()
    {
        var ids = 0;
        var stream = new ToolCallStream(ToolCallFormat.DeepSeekV31, incremental: true, () => $"id{++ids}");
        stream.Add("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>a<｜tool▁sep｜>{\"x\": [1, {\"y\": \"}\"}]}<｜tool▁call▁end｜>"
            + "<｜tool▁call▁begin｜>b<｜tool▁sep｜>{\"z\": \"q", null);

        Assert.Equal([(0, "a", ""), (0, null, "{\"x\": [1, {\"y\": \"}\"}]}"), (1, "b", ""), (1, null, "{\"z\": \"q")],
            stream.CallDeltas().Select(d => (d.CallIndex, d.Opening?.Name, d.Arguments)));
        var (rest, calls, complete) = stream.Finish(ToolCallFormat.DeepSeekV31.Parse(stream.Text, () => "unused"));
        Assert.Empty(rest);
        Assert.False(complete);
        Assert.Equal([new ToolCall("id1", "a", "{\"x\": [1, {\"y\": \"}\"}]}"), new ToolCall("id2", "b", "{\"z\": \"q")], calls);
    }

    [Fact]
    public void The_bare_name_reader_marks_a_call_closed_only_after_its_end_marker()
    {
        var reader = ToolCallFormat.DeepSeekV31.StreamedCallReader();
        foreach (var c in "<｜tool▁call▁begin｜>f<｜tool▁sep｜>{\"a\": \"\\\"{\"}<｜tool▁call▁")
        {
            reader.Append(c.ToString());
        }

        var call = Assert.Single(reader.Calls);
        Assert.Equal("f", call.Name);
        Assert.Equal("{\"a\": \"\\\"{\"}", call.ArgumentsFrom(0)); // an escaped quote and a brace in a string end nothing
        Assert.True(call.ArgumentsClosed);
        Assert.False(call.Closed);
        reader.Append("end｜>");
        Assert.True(call.Closed);
    }

    [Fact]
    public void A_forced_stream_that_never_named_a_call_ends_as_text()
    {
        var stream = new ToolCallStream(ToolCallFormat.Hermes, incremental: true);
        stream.Add("<tool_call>\n{\"na", null);

        Assert.Empty(stream.CallDeltas());
        var (rest, calls, complete) = stream.Finish(ToolCallFormat.Hermes.Parse(stream.Text, () => "unused"));
        Assert.Empty(rest);
        Assert.Empty(calls);
        Assert.False(complete);
        Assert.Equal("<tool_call>\n{\"na", stream.Rest(calledTools: false).Text);
    }

    [Fact]
    public void The_reader_takes_output_a_character_at_a_time_and_reads_an_escaped_name_as_its_text()
    {
        var reader = new PartialToolCalls("parameters");
        foreach (var c in "{\"name\": \"get_\\u0077eather\", \"parameters\": {\"a\": \"}\\\"\"")
        {
            reader.Append(c.ToString());
        }

        var call = Assert.Single(reader.Calls);
        Assert.Equal("get_weather", call.Name);
        Assert.Equal("{\"a\": \"}\\\"\"", call.ArgumentsFrom(0)); // an escaped quote and a brace inside a string end nothing
        Assert.False(call.ArgumentsClosed);
        Assert.False(call.Closed);

        reader.Append("}}; {");
        Assert.True(reader.Calls[0].Closed);
        Assert.Null(reader.Calls[1].Name);
    }

    [Fact]
    public void Arguments_go_out_in_pieces_that_join_to_the_whole() =>
        Assert.Equal(new string('x', 100), string.Concat(ToolCallStream.Pieces(new string('x', 100))));
}

/// <summary>Which parsed calls count: only calls of functions the request offered (and may call now).</summary>
public sealed class ToolUseTests
{
    private static readonly ToolUse Offered = new([new ToolDefinition("get_weather", null, """{"type":"object"}""")], "auto", null, Parallel: true);

    [Fact]
    public void A_call_of_a_function_nobody_offered_is_the_answers_text()
    {
        const string Output = "<tool_call>\n{\"name\": \"delete_everything\", \"arguments\": {}}\n</tool_call>";
        var parsed = Offered.Read(Output, ToolCallFormat.Hermes);

        Assert.Empty(parsed.Calls);
        Assert.Equal(Output, parsed.Content);
        Assert.Equal("tools offered: get_weather; tool_choice: auto; called: none", Offered.AuditDetail(parsed.Calls));
    }

    [Theory]
    [InlineData("ABC-123", true)]
    [InlineData("ABC-12345", false)]
    [InlineData("ABC-123\n", false)] // whole input: not "up to a final line feed"
    [InlineData("xABC-123", false)]
    public void Under_auto_a_custom_tools_call_counts_only_if_its_input_matches_the_grammar(string input, bool counts)
    {
        using var format = JsonDocument.Parse("""{"name":"find","format":{"type":"grammar","grammar":{"syntax":"regex","definition":"^[A-Z]{3}-[0-9]{2,4}$"}}}""");
        var tool = CustomTools.Read(format.RootElement, "tools[0].custom");
        var output = "<tool_call>\n" + JsonSerializer.Serialize(new { name = "find", arguments = new { input } }) + "\n</tool_call>";

        var parsed = new ToolUse([tool], "auto", null, Parallel: true).Read(output, ToolCallFormat.Hermes);

        Assert.Equal("^(?:[A-Z]{3}-[0-9]{2,4})$", CustomTools.Anchored(tool.InputPattern!)); // anchored once, the definition's own anchors taken off
        Assert.Contains("\"pattern\":\"^(?:[A-Z]{3}-[0-9]{2,4})$\"", tool.Parameters, StringComparison.Ordinal); // what a forced call enforces
        Assert.Equal(counts, parsed.Calls.Count == 1);
        Assert.Equal(counts ? string.Empty : output, parsed.Content ?? string.Empty);
    }

    [Fact]
    public void Mistral_calls_get_the_nine_character_ids_its_templates_demand()
    {
        var parsed = Offered.Read("""[TOOL_CALLS][{"name": "get_weather", "arguments": {}}]""", ToolCallFormat.Mistral);

        Assert.Matches("^[0-9a-f]{9}$", Assert.Single(parsed.Calls).Id);
    }

    [Fact]
    public void Llama3_keeps_one_call_a_turn_as_its_templates_do()
    {
        var parsed = Offered.Read("""{"name": "get_weather", "parameters": {}}; {"name": "get_weather", "parameters": {"a": 1}}""", ToolCallFormat.Llama3Json);

        Assert.Single(parsed.Calls);
    }
}
