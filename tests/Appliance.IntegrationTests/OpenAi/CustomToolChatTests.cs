using System.Net;
using System.Text;
using System.Text.Json;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// Custom tools (text input, free or following a regex) on /v1/chat/completions, over raw HTTP: the OpenAI .NET SDK
/// 2.15 has no custom tools on chat, so the wire shapes are checked as OpenAI documents them.
/// </summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class CustomToolChatTests(ApplianceServer server)
{
    private const string OrderId = "[A-Z]{3}-[0-9]{2,4}";

    [Fact]
    public async Task A_required_regex_tool_gets_input_matching_its_grammar_every_time()
    {
        for (var seed = 0; seed < 5; seed++)
        {
            var tool = new { type = "custom", custom = new { name = "find_order", description = "Order id", format = new { type = "grammar", grammar = new { syntax = "regex", definition = OrderId } } } };
            var root = await Chat(JsonSerializer.Serialize(new
            {
                model = "tiny",
                messages = new[] { new { role = "user", content = "Find my order" } },
                temperature = 1,
                seed,
                max_tokens = 80,
                tools = new[] { tool },
                tool_choice = "required",
                parallel_tool_calls = false,
            }));
            var choice = root.GetProperty("choices")[0];
            var call = Assert.Single(choice.GetProperty("message").GetProperty("tool_calls").EnumerateArray());

            Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
            Assert.Equal("custom", call.GetProperty("type").GetString());
            Assert.False(call.TryGetProperty("function", out _));
            Assert.Equal("find_order", call.GetProperty("custom").GetProperty("name").GetString());
            Assert.Matches($"^{OrderId}$", call.GetProperty("custom").GetProperty("input").GetString()!);
        }
    }

    [Fact]
    public async Task A_required_Lark_tool_gets_input_the_real_Lark_parser_accepts()
    {
        const string Grammar = """
            start: command (";" command) ~ 0..2
            command: "move" " " DIRECTION " " DIGIT ~ 1..2 | "stop"
            DIRECTION: "north" | "south" | "east" | "west"
            %import common.DIGIT
            """;
        var inputs = new List<string>();
        for (var seed = 0; seed < 4; seed++)
        {
            var tool = new { type = "custom", custom = new { name = "robot", format = new { type = "grammar", grammar = new { syntax = "lark", definition = Grammar } } } };
            var root = await Chat(JsonSerializer.Serialize(new
            {
                model = "tiny",
                messages = new[] { new { role = "user", content = "Drive" } },
                temperature = 1,
                seed,
                max_tokens = 80,
                tools = new[] { tool },
                tool_choice = new { type = "custom", custom = new { name = "robot" } },
            }));
            var call = Assert.Single(root.GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls").EnumerateArray());
            inputs.Add(call.GetProperty("custom").GetProperty("input").GetString()!);
        }

        Assert.All(Appliance.Tests.Common.ReferenceLark.Parses(Grammar, inputs), Assert.True);
    }

    [Fact]
    public async Task A_named_custom_tool_streams_its_input_as_generated_and_answers_as_it_does_unstreamed()
    {
        const string Request = """
            {"model":"tiny","messages":[{"role":"user","content":"Patch it"}],"temperature":0,"max_tokens":60,
             "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}},{"type":"custom","custom":{"name":"apply_patch","format":{"type":"text"}}}],
             "tool_choice":{"type":"custom","custom":{"name":"apply_patch"}}
            """;
        var whole = (await Chat(Request + "}")).GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls")[0];

        using var response = await server.Http.PostAsync("/v1/chat/completions", Json(Request + ""","stream":true}"""));
        var raw = await response.Content.ReadAsStringAsync();
        var deltas = raw.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)
            .Where(e => e != "data: [DONE]")
            .Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement.GetProperty("choices")[0])
            .Where(c => c.GetProperty("delta").TryGetProperty("tool_calls", out _))
            .Select(c => c.GetProperty("delta").GetProperty("tool_calls")[0])
            .ToList();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var opening = deltas[0];
        Assert.Equal(("custom", "apply_patch"), (opening.GetProperty("type").GetString(), opening.GetProperty("custom").GetProperty("name").GetString()));
        Assert.StartsWith("call_", opening.GetProperty("id").GetString(), StringComparison.Ordinal);
        Assert.All(deltas, d => Assert.False(d.TryGetProperty("function", out _)));
        Assert.All(deltas[1..], d => Assert.False(d.TryGetProperty("id", out _)));
        var input = string.Concat(deltas.Select(d => d.GetProperty("custom").GetProperty("input").GetString()));
        Assert.Equal(whole.GetProperty("custom").GetProperty("input").GetString(), input); // greedy: streaming changes nothing
        Assert.False(string.IsNullOrEmpty(input));
        Assert.True(deltas.Count > 3, $"{deltas.Count} deltas: the input was not streamed as generated");
    }

    [Fact]
    public async Task A_custom_tool_call_and_its_result_sent_back_reach_the_prompt()
    {
        async Task<int> PromptTokens(string messages) =>
            (await Chat($$$"""{"model":"tiny","max_tokens":1,"messages":[{"role":"user","content":"Rename x to y in a.py"}{{{messages}}}],"tools":[{"type":"custom","custom":{"name":"apply_patch"}}]}"""))
                .GetProperty("usage").GetProperty("prompt_tokens").GetInt32();

        const string Call = """,{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"custom","custom":{"name":"apply_patch","input":"*** Begin Patch\n-x = 1\n+y = 1\n*** End Patch"}}]}""";
        var withCall = await PromptTokens(Call);
        var withResult = await PromptTokens(Call + """,{"role":"tool","tool_call_id":"call_1","content":"Done: a.py updated"}""");

        Assert.True(withCall > await PromptTokens(string.Empty) + 10);
        Assert.True(withResult > withCall + 4);
    }

    [Theory]
    [InlineData("""{"type":"custom","custom":{"name":"p","format":{"type":"grammar","grammar":{"syntax":"lark","definition":"start: \"a\"\n%declare B"}}}}""", "tools[0].custom.format.grammar.definition", "unsupported_grammar")]
    [InlineData("""{"type":"custom","custom":{"name":"p","format":{"type":"grammar","grammar":{"syntax":"ebnf","definition":"a"}}}}""", "tools[0].custom.format.grammar.syntax", "invalid_value")]
    [InlineData("""{"type":"custom","custom":{"name":"p","format":{"type":"grammar","grammar":{"syntax":"regex","definition":"(a)\\1"}}}}""", "tools[0].custom.format.grammar.definition", "unsupported_grammar")]
    [InlineData("""{"type":"custom","custom":{"name":"p","format":{"type":"grammar","grammar":{"syntax":"regex","definition":"[[:alpha:]]+"}}}}""", "tools[0].custom.format.grammar.definition", "unsupported_grammar")]
    [InlineData("""{"type":"custom","custom":{"name":"p","format":{"type":"grammar","grammar":{"syntax":"regex","definition":"[a-z&&[^x]]"}}}}""", "tools[0].custom.format.grammar.definition", "unsupported_grammar")]
    [InlineData("""{"type":"custom","custom":{"name":"p","format":{"type":"json"}}}""", "tools[0].custom.format.type", "invalid_value")]
    [InlineData("""{"type":"custom","custom":{"name":"no spaces"}}""", "tools[0].custom.name", "invalid_value")]
    [InlineData("""{"type":"custom"}""", "tools[0].custom", "missing_required_parameter")]
    public async Task A_custom_tool_that_cannot_be_honoured_is_refused_naming_the_field(string tool, string param, string code)
    {
        using var response = await server.Http.PostAsync("/v1/chat/completions", Json($$"""{"model":"tiny","messages":[{"role":"user","content":"x"}],"tools":[{{tool}}]}"""));
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal((param, code), (error.RootElement.GetProperty("error").GetProperty("param").GetString(), error.RootElement.GetProperty("error").GetProperty("code").GetString()));
    }

    [Fact]
    public async Task A_named_tool_choice_must_name_a_custom_tool_by_its_kind()
    {
        using var response = await server.Http.PostAsync("/v1/chat/completions", Json("""
            {"model":"tiny","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"custom","custom":{"name":"f"}}}
            """));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("custom tool 'f'", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private async Task<JsonElement> Chat(string body)
    {
        using var response = await server.Http.PostAsync("/v1/chat/completions", Json(body));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");
}
