using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using Anthropic;
using Anthropic.Models.Messages;
using Appliance.Prompting;
using Appliance.Tests.Common;
using OpenAI;
using OpenAI.Responses;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>One appliance serving a reasoning model: Qwen3's real tokenizer and chat template over a synthetic decoder.</summary>
public sealed class ReasoningModelFixture : IAsyncLifetime
{
    private readonly TempFolder _root = new("reasoning-model");

    internal RunningAppliance Running { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var folder = ModelFamilyTests.WriteFamilyModel(_root, "qwen3", "<|im_end|>");
        // Greedy by default: Anthropic's SDK sends no temperature, and streamed answers are compared with whole ones.
        Running = await RunningAppliance.StartAsync(
            $"--Models:qwen3:Path={folder}", "--Models:qwen3:DefaultTemperature=0", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=Warning");
        await Running.WaitUntilReadyAsync();
    }

    public async Task DisposeAsync()
    {
        await Running.DisposeAsync();
        _root.Dispose();
    }
}

/// <summary>
/// A reasoning model's thought comes back apart from its answer on chat completions (reasoning_content), the Messages
/// API (thinking blocks) and the Responses API (a reasoning item), plain and streamed; a response format or a required
/// tool call applies after the thought; thinking can be switched off; a budget closes the thought for the model. The
/// decoder has random weights, so it never closes a thought by itself: every thought here ends where the appliance closes
/// it, which is what these tests check.
/// </summary>
public sealed class ReasoningModelTests(ReasoningModelFixture fixture) : IClassFixture<ReasoningModelFixture>
{
    [Fact]
    public async Task The_models_list_shows_the_sampling_defaults_the_administrator_set()
    {
        using var model = JsonDocument.Parse(await fixture.Running.Http.GetStringAsync("/v1/models/qwen3"));
        Assert.Equal(0f, model.RootElement.GetProperty("sampling_defaults").GetProperty("temperature").GetSingle());
    }

    private const string Schema = """{"type":"object","properties":{"answer":{"type":"integer"},"unit":{"enum":["kg","g"]}},"required":["answer","unit"],"additionalProperties":false}""";

    private HttpClient Http => fixture.Running.Http;

    [Fact]
    public async Task A_json_schema_answer_follows_the_thought_which_comes_back_as_reasoning_content()
    {
        var root = await ChatAsync(JsonAnswer(stream: false));
        var message = root.GetProperty("choices")[0].GetProperty("message");

        var thought = message.GetProperty("reasoning_content").GetString()!;
        Assert.DoesNotContain("<think>", thought, StringComparison.Ordinal);
        Assert.DoesNotContain("</think>", message.GetProperty("content").GetString()!, StringComparison.Ordinal);
        using var answer = JsonDocument.Parse(message.GetProperty("content").GetString()!);
        Assert.Equal(JsonValueKind.Number, answer.RootElement.GetProperty("answer").ValueKind);
        Assert.Equal("stop", root.GetProperty("choices")[0].GetProperty("finish_reason").GetString());

        // The thought may use half of max_tokens when an answer must follow: then the closing tag is forced.
        var usage = root.GetProperty("usage");
        var reasoningTokens = usage.GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32();
        Assert.InRange(reasoningTokens, 2, 60 / 2 + 1);
        Assert.True(usage.GetProperty("completion_tokens").GetInt32() > reasoningTokens);
    }

    [Fact]
    public async Task Streamed_thought_and_answer_arrive_as_separate_deltas_and_join_into_the_whole_answer()
    {
        var whole = (await ChatAsync(JsonAnswer(stream: false))).GetProperty("choices")[0].GetProperty("message");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(JsonAnswer(stream: true), Encoding.UTF8, "application/json") };
        using var response = await Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);

        var (thought, answer) = (new StringBuilder(), new StringBuilder());
        var answerBegun = false;
        foreach (var line in body.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
        {
            using var chunk = JsonDocument.Parse(line["data: ".Length..]);
            if (chunk.RootElement.GetProperty("choices").GetArrayLength() == 0)
            {
                continue;
            }

            var delta = chunk.RootElement.GetProperty("choices")[0].GetProperty("delta");
            if (delta.TryGetProperty("reasoning_content", out var piece))
            {
                Assert.False(answerBegun, "a thought piece after the answer began");
                thought.Append(piece.GetString());
            }

            if (delta.TryGetProperty("content", out var text) && text.GetString() is { Length: > 0 } content)
            {
                answerBegun = true;
                answer.Append(content);
            }
        }

        Assert.Equal(whole.GetProperty("reasoning_content").GetString(), thought.ToString());
        Assert.Equal(whole.GetProperty("content").GetString(), answer.ToString());
    }

    [Theory]
    [InlineData("""{"reasoning_effort":"none"}""")]
    [InlineData("""{"chat_template_kwargs":{"enable_thinking":false}}""")]
    public async Task Thinking_switched_off_gives_an_answer_without_a_thought(string switchOff)
    {
        var request = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(JsonAnswer(stream: false))!;
        foreach (var (name, value) in JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(switchOff)!)
        {
            request[name] = value;
        }

        var root = await ChatAsync(JsonSerializer.Serialize(request));
        var message = root.GetProperty("choices")[0].GetProperty("message");

        Assert.False(message.TryGetProperty("reasoning_content", out _));
        using var answer = JsonDocument.Parse(message.GetProperty("content").GetString()!);
        Assert.Equal(0, root.GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());
    }

    [Fact]
    public async Task An_earlier_thought_in_the_history_reaches_the_template_as_Jinja2_renders_it()
    {
        ChatMessage[] messages =
        [
            new("user", "What is 17 * 3?"),
            new("assistant", string.Empty, [new ToolCall("call_1", "multiply", """{"a":17,"b":3}""")]) { Reasoning = "I should use the tool." },
            new("tool", "51", ToolCallId: "call_1"),
        ];
        var body = JsonSerializer.Serialize(new
        {
            model = "qwen3",
            max_tokens = 2,
            messages = new object[]
            {
                new { role = "user", content = messages[0].Content },
                new { role = "assistant", content = (string?)null, reasoning_content = messages[1].Reasoning, tool_calls = new[] { new { id = "call_1", type = "function", function = new { name = "multiply", arguments = """{"a":17,"b":3}""" } } } },
                new { role = "tool", tool_call_id = "call_1", content = "51" },
            },
        });

        var root = await ChatAsync(body);

        var (template, bos, eos) = ReferenceChatTemplates.ForFamily("qwen3");
        var rendered = ReferenceChatTemplates.Render(template, messages, bos, eos, addGenerationPrompt: true, DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("<think>\nI should use the tool.\n</think>", rendered, StringComparison.Ordinal);
        Assert.Equal(ReferenceTokenizers.Encode("qwen3", [rendered])[0].Length, root.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task The_Messages_API_returns_a_thinking_block_closed_at_its_budget_then_the_text_plain_and_streamed()
    {
        var client = new AnthropicClient { ApiKey = fixture.Running.Token, BaseUrl = Http.BaseAddress!.ToString().TrimEnd('/'), MaxRetries = 0 };
        var parameters = new MessageCreateParams
        {
            MaxTokens = 30,
            Model = "qwen3",
            Thinking = new ThinkingConfigEnabled { BudgetTokens = 6 },
            Messages = [new UserMessageParam { Content = "Think, then answer." }],
        };

        var message = await client.Messages.Create(parameters);

        Assert.True(message.Content[0].TryPickThinking(out var thinking));
        Assert.False(string.IsNullOrEmpty(thinking!.Thinking));
        Assert.True(message.Content.Count == 1 || message.Content[1].TryPickText(out _));
        var tokens = Tokens(thinking.Thinking);
        Assert.InRange(tokens, 1, 6); // the budget's tokens, less the opening tag's newline the prompt wrote

        var (streamedThought, streamedText) = (new StringBuilder(), new StringBuilder());
        await foreach (var streamed in client.Messages.CreateStreaming(parameters))
        {
            if (streamed.TryPickContentBlockDelta(out var delta))
            {
                if (delta!.Delta.TryPickThinking(out var thought))
                {
                    Assert.Equal(0, streamedText.Length);
                    streamedThought.Append(thought!.Thinking);
                }
                else if (delta.Delta.TryPickText(out var text))
                {
                    streamedText.Append(text!.Text);
                }
            }
        }

        Assert.Equal(thinking.Thinking, streamedThought.ToString());
        Assert.Equal(message.Content.Count > 1 && message.Content[1].TryPickText(out var whole) ? whole!.Text : string.Empty, streamedText.ToString());
    }

    [Fact]
    public async Task A_Claude_client_s_large_max_tokens_and_budget_are_taken_and_a_prefill_with_thinking_is_refused()
    {
        // Claude clients send the model's maximum and a large budget: both are ceilings here (the context is 512 tokens).
        var large = await MessagesAsync("""{"model":"qwen3","max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":10000},"messages":[{"role":"user","content":"Go."}]}""");
        Assert.True(large.Status == HttpStatusCode.OK, large.Body.ToString());
        Assert.Equal("thinking", large.Body.GetProperty("content")[0].GetProperty("type").GetString());

        var prefilled = await MessagesAsync("""{"model":"qwen3","max_tokens":8,"thinking":{"type":"enabled","budget_tokens":4},"messages":[{"role":"user","content":"Go."},{"role":"assistant","content":"Sure,"}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, prefilled.Status);
        Assert.Contains("prefill", prefilled.Body.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);

        // Without thinking asked for, a prefilled answer is continued as answer: no thought opens after it.
        var continued = await MessagesAsync("""{"model":"qwen3","max_tokens":6,"tool_choice":{"type":"any"},"tools":[{"name":"go","input_schema":{"type":"object","properties":{"fast":{"type":"boolean"}}}}],"messages":[{"role":"user","content":"Go."},{"role":"assistant","content":"Sure,"}]}""");
        Assert.True(continued.Status == HttpStatusCode.OK, continued.Body.ToString());
        Assert.DoesNotContain(continued.Body.GetProperty("content").EnumerateArray(), block => block.GetProperty("type").GetString() == "thinking");
    }

    [Fact]
    public async Task Thinking_disabled_on_the_Messages_API_gives_no_thinking_block()
    {
        var client = new AnthropicClient { ApiKey = fixture.Running.Token, BaseUrl = Http.BaseAddress!.ToString().TrimEnd('/'), MaxRetries = 0 };
        var message = await client.Messages.Create(new MessageCreateParams
        {
            MaxTokens = 8,
            Model = "qwen3",
            Thinking = new ThinkingConfigDisabled(),
            Messages = [new UserMessageParam { Content = "Answer." }],
        });

        Assert.DoesNotContain(message.Content, block => block.TryPickThinking(out _));
    }

    [Fact]
    public async Task The_Responses_API_leads_with_a_reasoning_item_before_a_required_call_plain_and_streamed()
    {
        const string Body = """
            {"model":"qwen3","input":"Weigh it.","max_output_tokens":60,"temperature":0,"store":false,"tool_choice":"required",
             "tools":[{"type":"function","name":"weigh","parameters":{"type":"object","properties":{"grams":{"type":"integer"}},"required":["grams"],"additionalProperties":false},"strict":true}]}
            """;
        using var response = await Http.PostAsync("/v1/responses", new StringContent(Body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var whole = JsonDocument.Parse(text);
        var output = whole.RootElement.GetProperty("output");
        Assert.Equal("reasoning", output[0].GetProperty("type").GetString());
        var thought = output[0].GetProperty("content")[0].GetProperty("text").GetString()!;
        Assert.Equal("function_call", output[1].GetProperty("type").GetString());
        using (JsonDocument.Parse(output[1].GetProperty("arguments").GetString()!))
        {
        }

        Assert.True(whole.RootElement.GetProperty("usage").GetProperty("output_tokens_details").GetProperty("reasoning_tokens").GetInt32() > 0);

        // Streamed on the wire, the reasoning item is framed as a message is: its one content part (reasoning_text) opened
        // empty, the deltas, the text done, the part done with the whole thought, the item done; then the call.
        using (var stream = await Http.PostAsync("/v1/responses", new StringContent(Body.Replace("\"store\":false", "\"store\":false,\"stream\":true", StringComparison.Ordinal), Encoding.UTF8, "application/json")))
        {
            var events = (await stream.Content.ReadAsStringAsync()).Split('\n')
                .Where(l => l.StartsWith("data: {", StringComparison.Ordinal))
                .Select(l => JsonDocument.Parse(l["data: ".Length..]).RootElement).ToList();
            var thoughtEvents = events.Where(e => e.TryGetProperty("output_index", out var index) && index.GetInt32() == 0).ToList();
            var kinds = thoughtEvents.Select(e => e.GetProperty("type").GetString()!).Where(k => k != "response.reasoning_text.delta").ToList();
            Assert.Equal(["response.output_item.added", "response.content_part.added", "response.reasoning_text.done", "response.content_part.done", "response.output_item.done"], kinds);
            Assert.Equal(thought, string.Concat(thoughtEvents.Where(e => e.GetProperty("type").GetString() == "response.reasoning_text.delta").Select(e => e.GetProperty("delta").GetString())));
            var opened = thoughtEvents[1].GetProperty("part");
            var closed = thoughtEvents.Single(e => e.GetProperty("type").GetString() == "response.content_part.done").GetProperty("part");
            Assert.Equal(("reasoning_text", ""), (opened.GetProperty("type").GetString(), opened.GetProperty("text").GetString()));
            Assert.Equal(("reasoning_text", thought), (closed.GetProperty("type").GetString(), closed.GetProperty("text").GetString()));
            Assert.Equal(events.Count, events.Select(e => e.GetProperty("sequence_number").GetInt32()).Distinct().Count());
        }

        // The same through the official SDK, streamed: the reasoning text in deltas, then the call.
        var client = new OpenAIClient(new ApiKeyCredential(fixture.Running.Token!), new OpenAIClientOptions { Endpoint = new Uri(Http.BaseAddress!, "/v1") }).GetResponsesClient();
        var options = new CreateResponseOptions("qwen3", [ResponseItem.CreateUserMessageItem("Weigh it.")])
        {
            MaxOutputTokenCount = 60,
            Temperature = 0,
            StoredOutputEnabled = false,
            StreamingEnabled = true,
            ToolChoice = ResponseToolChoice.CreateRequiredChoice(),
        };
        options.Tools.Add(ResponseTool.CreateFunctionTool("weigh", BinaryData.FromString("""{"type":"object","properties":{"grams":{"type":"integer"}},"required":["grams"],"additionalProperties":false}"""), true));
        var streamed = new StringBuilder();
        var indices = new List<int>();
        var reasoningPartsDone = 0;
        ResponseResult? final = null;
        await foreach (var update in await client.CreateResponseStreamingAsync(options))
        {
            switch (update)
            {
                case StreamingResponseReasoningTextDeltaUpdate delta:
                    streamed.Append(delta.Delta);
                    break;
                case StreamingResponseOutputItemAddedUpdate added:
                    indices.Add(added.OutputIndex);
                    break;
                case StreamingResponseContentPartDoneUpdate partDone when partDone.OutputIndex == 0:
                    reasoningPartsDone++;
                    break;
                case StreamingResponseCompletedUpdate completed:
                    final = completed.Response;
                    break;
            }
        }

        Assert.Equal(thought, streamed.ToString());
        Assert.Equal([0, 1], indices);
        Assert.Equal(1, reasoningPartsDone);
        Assert.NotNull(final);
        Assert.IsType<ReasoningResponseItem>(final.OutputItems[0]);
        Assert.IsType<FunctionCallResponseItem>(final.OutputItems[1]);
    }

    private static string JsonAnswer(bool stream) => JsonSerializer.Serialize(new
    {
        model = "qwen3",
        messages = new[] { new { role = "user", content = "How heavy is it?" } },
        max_tokens = 60,
        temperature = 0,
        stream,
        response_format = new { type = "json_schema", json_schema = new { name = "weight", strict = true, schema = JsonDocument.Parse(Schema).RootElement } },
    });

    private async Task<(HttpStatusCode Status, JsonElement Body)> MessagesAsync(string body)
    {
        using var response = await Http.PostAsync("/v1/messages", new StringContent(body, Encoding.UTF8, "application/json"));
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private static int Tokens(string text) => ReferenceTokenizers.Encode("qwen3", [text])[0].Length;

    private async Task<JsonElement> ChatAsync(string body)
    {
        using var response = await Http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }
}
