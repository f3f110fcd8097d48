using System.Text.Json;
using Anthropic;
using Anthropic.Models.Messages;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>Anthropic's Messages API on the appliance, through the official Anthropic .NET SDK (x-api-key carries the token).</summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class MessagesSdkTests(ApplianceServer server)
{
    private AnthropicClient Client() => new() { ApiKey = server.Token, BaseUrl = server.Http.BaseAddress!.ToString().TrimEnd('/'), MaxRetries = 0 };

    private static MessageCreateParams Hello(int maxTokens = 12) => new()
    {
        MaxTokens = maxTokens,
        Model = ApplianceServer.Model,
        System = "You are terse.",
        Messages = [new UserMessageParam { Content = "Say something." }],
    };

    [Fact]
    public async Task A_message_comes_back_with_text_usage_and_stop_reason()
    {
        var message = await Client().Messages.Create(Hello());

        Assert.StartsWith("msg_", message.ID, StringComparison.Ordinal);
        Assert.True(message.Content[0].TryPickText(out var text));
        Assert.False(string.IsNullOrEmpty(text!.Text));
        Assert.Equal(StopReason.MaxTokens, message.StopReason!.Value());
        Assert.Equal(12, message.Usage.OutputTokens);
        Assert.True(message.Usage.InputTokens > 5);
    }

    [Fact]
    public async Task Streamed_events_come_in_Anthropics_order_with_the_text_in_deltas()
    {
        var text = new System.Text.StringBuilder();
        var kinds = new List<string>();
        await foreach (var streamed in Client().Messages.CreateStreaming(Hello()))
        {
            if (streamed.TryPickStart(out _))
            {
                kinds.Add("message_start");
            }
            else if (streamed.TryPickContentBlockStart(out _))
            {
                kinds.Add("content_block_start");
            }
            else if (streamed.TryPickContentBlockDelta(out var delta))
            {
                Assert.True(delta!.Delta.TryPickText(out var piece));
                text.Append(piece!.Text);
            }
            else if (streamed.TryPickContentBlockStop(out _))
            {
                kinds.Add("content_block_stop");
            }
            else if (streamed.TryPickDelta(out var end))
            {
                kinds.Add("message_delta");
                Assert.Equal(12, end!.Usage.OutputTokens);
            }
            else if (streamed.TryPickStop(out _))
            {
                kinds.Add("message_stop");
            }
        }

        Assert.False(string.IsNullOrEmpty(text.ToString())); // the SDK sends no temperature: sampled text, so only its presence is compared
        Assert.Equal(["message_start", "content_block_start", "content_block_stop", "message_delta", "message_stop"], kinds);
    }

    [Fact]
    public async Task Tokens_are_counted_as_a_message_would_be()
    {
        var message = await Client().Messages.Create(Hello());
        var counted = await Client().Messages.CountTokens(new MessageCountTokensParams
        {
            Model = ApplianceServer.Model,
            System = "You are terse.",
            Messages = [new UserMessageParam { Content = "Say something." }],
        });

        // Anthropic counts cache reads apart from input_tokens: together they are the prompt.
        Assert.Equal(message.Usage.InputTokens + (message.Usage.CacheReadInputTokens ?? 0), counted.InputTokens);
    }

    [Fact]
    public async Task A_required_tool_is_used_with_input_that_fits_its_schema()
    {
        var parameters = Hello(160) with
        {
            Tools = [new Tool
            {
                Name = "get_weather",
                Description = "Current weather in a city",
                InputSchema = new InputSchema
                {
                    Properties = new Dictionary<string, JsonElement>
                    {
                        ["city"] = JsonDocument.Parse("""{"type":"string","maxLength":20}""").RootElement,
                        ["unit"] = JsonDocument.Parse("""{"type":"string","enum":["c","f"]}""").RootElement,
                    },
                    Required = ["city", "unit"],
                },
            }],
            ToolChoice = new ToolChoiceAny(),
        };
        var message = await Client().Messages.Create(parameters);

        Assert.Equal(StopReason.ToolUse, message.StopReason!.Value());
        var uses = message.Content.Select(block => block.TryPickToolUse(out var u) ? u : null).OfType<ToolUseBlock>().ToList();
        Assert.NotEmpty(uses);
        Assert.All(uses, use =>
        {
            Assert.Equal("get_weather", use.Name);
            Assert.StartsWith("toolu_", use.ID, StringComparison.Ordinal);
            Assert.Contains(use.Input["unit"].GetString(), new[] { "c", "f" });
            Assert.True(use.Input["city"].GetString()!.EnumerateRunes().Count() <= 20); // JSON Schema counts characters, not UTF-16 units
        });
    }

    [Fact]
    public async Task A_bad_request_is_answered_in_Anthropics_error_shape()
    {
        using var response = await server.Http.PostAsync("/v1/messages", new StringContent("""{"model":"tiny","messages":[{"role":"user","content":"x"}]}""", System.Text.Encoding.UTF8, "application/json"));
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal("error", body.RootElement.GetProperty("type").GetString());
        Assert.Equal("invalid_request_error", body.RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains("max_tokens", body.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_a_valid_key_it_is_an_authentication_error()
    {
        using var anonymous = new HttpClient { BaseAddress = server.Http.BaseAddress };
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/messages") { Content = new StringContent("""{"model":"tiny","max_tokens":5,"messages":[{"role":"user","content":"x"}]}""", System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Add("x-api-key", "not-a-key");
        using var response = await anonymous.SendAsync(request);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(401, (int)response.StatusCode);
        Assert.Equal("authentication_error", body.RootElement.GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_streamed_tool_use_arrives_as_a_block_with_input_json_deltas_after_a_tool_result_turn()
    {
        const string Body = """
            {"model":"tiny","max_tokens":120,"stream":true,
             "tools":[{"name":"lookup","description":"Find an order","input_schema":{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}}],
             "tool_choice":{"type":"tool","name":"lookup","disable_parallel_tool_use":true},
             "messages":[
               {"role":"user","content":"Where is order 7?"},
               {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"lookup","input":{"id":7}}]},
               {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"shipped"},{"type":"text","text":"And order 8?"}]}]}
            """;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/messages") { Content = new StringContent(Body, System.Text.Encoding.UTF8, "application/json") };
        using var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n');

        var events = lines.Where(l => l.StartsWith("event: ", StringComparison.Ordinal)).Select(l => l[7..]).ToList();
        var data = lines.Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => JsonDocument.Parse(l[6..]).RootElement).ToList();
        Assert.Equal(events, data.Select(d => d.GetProperty("type").GetString()!).ToList()); // each event line names its data's type
        var start = data.Single(d => d.GetProperty("type").GetString() == "content_block_start").GetProperty("content_block");
        Assert.Equal("tool_use", start.GetProperty("type").GetString());
        Assert.Equal("lookup", start.GetProperty("name").GetString());
        var pieces = data.Where(d => d.GetProperty("type").GetString() == "content_block_delta")
            .Select(d => d.GetProperty("delta")).Select(delta => delta.GetProperty("type").GetString() == "input_json_delta" ? delta.GetProperty("partial_json").GetString() : throw new InvalidOperationException("text in a forced tool use")).ToList();
        var input = string.Concat(pieces);
        Assert.Equal(JsonValueKind.Number, JsonDocument.Parse(input).RootElement.GetProperty("id").ValueKind);
        Assert.True(pieces.Count > 1, $"the forced input came in one piece, not as generated: {input}"); // {"id": 8} is more than one token
        Assert.Equal("tool_use", data.Single(d => d.GetProperty("type").GetString() == "message_delta").GetProperty("delta").GetProperty("stop_reason").GetString());
        Assert.Equal("message_stop", events[^1]);
    }

    [Fact]
    public async Task A_clients_large_max_tokens_is_a_ceiling_and_consecutive_user_turns_are_one()
    {
        using var response = await Post("/v1/messages", """{"model":"tiny","max_tokens":32000,"messages":[{"role":"user","content":"a"},{"role":"user","content":[{"type":"text","text":"b"},{"type":"text","text":"c"}]}]}""");
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("message", body.RootElement.GetProperty("type").GetString());
        Assert.Equal(0, body.RootElement.GetProperty("usage").GetProperty("cache_read_input_tokens").GetInt32());
    }

    [Fact]
    public async Task Claude_codes_context_management_and_effort_are_accepted_and_ignored()
    {
        const string Hints = "\"context_management\":{\"edits\":[{\"type\":\"clear_tool_uses_20250919\"}]},\"output_config\":{\"effort\":\"medium\"}";
        using var response = await Post("/v1/messages", $$"""{"model":"tiny","max_tokens":5,{{Hints}},"messages":[{"role":"user","content":"a"}]}""");
        Assert.Equal(200, (int)response.StatusCode);
        using var counted = await Post("/v1/messages/count_tokens", $$"""{"model":"tiny",{{Hints}},"messages":[{"role":"user","content":"a"}]}""");
        Assert.Equal(200, (int)counted.StatusCode);
    }

    [Fact]
    public async Task Tool_results_and_their_errors_reach_the_prompt()
    {
        static string Conversation(string result) =>
            """{"model":"tiny","messages":[{"role":"user","content":"Where is order 7?"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"lookup","input":{"id":7}}]},{"role":"user","content":["""
            + result
            + """]}],"tools":[{"name":"lookup","input_schema":{"type":"object","properties":{"id":{"type":"integer"}}}}]}""";

        var without = await InputTokens(Conversation("""{"type":"text","text":"ok"}"""));
        var with = await InputTokens(Conversation("""{"type":"tool_result","tool_use_id":"toolu_1","content":"shipped on Monday from the warehouse in Lyon"},{"type":"text","text":"ok"}"""));
        var failed = await InputTokens(Conversation("""{"type":"tool_result","tool_use_id":"toolu_1","is_error":true,"content":"shipped on Monday from the warehouse in Lyon"},{"type":"text","text":"ok"}"""));

        Assert.True(with > without + 8, $"{with} vs {without}");
        Assert.True(failed > with, $"{failed} vs {with}"); // the error is said
    }

    [Theory]
    [InlineData("""{"model":"tiny","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{"type":"string"}}]}""", "tools.0.input_schema.type")]
    [InlineData("""{"model":"tiny","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"},"stop_sequences":["}"]}""", "stop_sequences")]
    [InlineData("""{"model":"tiny","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{}}]}]}""", "image")]
    [InlineData("""{"model":"tiny","max_tokens":5,"messages":[{"role":"user","content":"x"}],"output_config":{"format":{"type":"json_schema","schema":{}}}}""", "output_config.format")]
    public async Task Requests_it_cannot_honour_are_refused_in_Anthropics_shape(string body, string named)
    {
        using var response = await Post("/v1/messages", body);
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal("invalid_request_error", error.RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains(named, error.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    private async Task<HttpResponseMessage> Post(string path, string body) =>
        await server.Http.PostAsync(path, new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

    private async Task<int> InputTokens(string body)
    {
        using var response = await Post("/v1/messages/count_tokens", body);
        using var counted = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return counted.RootElement.GetProperty("input_tokens").GetInt32();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_matched_stop_sequence_is_named_in_the_answer(bool stream)
    {
        using var response = await Post("/v1/messages", $$"""{"model":"tiny","max_tokens":60,"stream":{{(stream ? "true" : "false")}},"stop_sequences":[" ","e","a"],"messages":[{"role":"user","content":"Say something."}]}""");
        var body = await response.Content.ReadAsStringAsync();
        var final = stream
            ? JsonDocument.Parse(body.Split('\n').Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l[6..]).Single(l => l.Contains("message_delta", StringComparison.Ordinal))).RootElement.GetProperty("delta")
            : JsonDocument.Parse(body).RootElement;

        Assert.Equal("stop_sequence", final.GetProperty("stop_reason").GetString());
        Assert.Contains(final.GetProperty("stop_sequence").GetString(), new[] { " ", "e", "a" });
    }
}
