using System.ClientModel;
using System.Text;
using System.Text.Json;
using Appliance.Tests.Common;
using Json.Schema;
using OpenAI;
using OpenAI.Responses;

#pragma warning disable OPENAI001 // the Responses client is marked experimental in the SDK

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>The Responses API (stateless) through the official OpenAI .NET SDK's ResponsesClient.</summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class ResponsesSdkTests(ApplianceServer server)
{
    private const string WeatherParameters = """{"type":"object","properties":{"city":{"type":"string","maxLength":30}},"required":["city"],"additionalProperties":false}""";

    private ResponsesClient Client() => new OpenAIClient(new ApiKeyCredential(server.Token), new OpenAIClientOptions { Endpoint = server.ApiBase }).GetResponsesClient();

    private static CreateResponseOptions Hello(int maxTokens = 12) => new(ApplianceServer.Model, [ResponseItem.CreateUserMessageItem("Say something.")])
    {
        Instructions = "You are terse.",
        MaxOutputTokenCount = maxTokens,
        Temperature = 0,
        StoredOutputEnabled = false,
    };

    [Fact]
    public async Task A_response_has_output_text_usage_and_an_incomplete_status_at_the_token_limit()
    {
        ResponseResult result = await Client().CreateResponseAsync(Hello());

        Assert.StartsWith("resp_", result.Id, StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(result.GetOutputText()));
        Assert.Equal(ResponseStatus.Incomplete, result.Status);
        Assert.Equal(12, result.Usage.OutputTokenCount);
        Assert.True(result.Usage.InputTokenCount > 5);
    }

    [Fact]
    public async Task Streamed_deltas_join_into_the_same_text_and_end_with_the_whole_response()
    {
        ResponseResult whole = await Client().CreateResponseAsync(Hello());
        var text = new StringBuilder();
        ResponseResult? final = null;
        var streamed = Hello();
        streamed.StreamingEnabled = true;
        await foreach (var update in await Client().CreateResponseStreamingAsync(streamed))
        {
            if (update is StreamingResponseOutputTextDeltaUpdate delta)
            {
                text.Append(delta.Delta);
            }
            else if (update is StreamingResponseIncompleteUpdate incomplete)
            {
                final = incomplete.Response;
            }
        }

        Assert.Equal(whole.GetOutputText(), text.ToString());
        Assert.NotNull(final);
        Assert.Equal(whole.GetOutputText(), final.GetOutputText());
    }

    [Fact]
    public async Task A_required_function_call_comes_back_as_a_function_call_item_and_its_output_can_be_sent_back()
    {
        var options = Hello(120);
        options.Tools.Add(ResponseTool.CreateFunctionTool("get_weather", BinaryData.FromString(WeatherParameters), true, "Current weather in a city"));
        options.ToolChoice = ResponseToolChoice.CreateRequiredChoice();
        ResponseResult result = await Client().CreateResponseAsync(options);

        var call = result.OutputItems.OfType<FunctionCallResponseItem>().First();
        Assert.Equal("get_weather", call.FunctionName);
        Assert.Null(StructuredOutputSchemas.Problem(JsonSchema.FromText(WeatherParameters), call.FunctionArguments.ToString()));

        // Stateless: the next turn sends the call and its output back as input items, and both reach the prompt.
        async Task<int> InputTokens(params ResponseItem[] items)
        {
            var next = new CreateResponseOptions(ApplianceServer.Model, items) { MaxOutputTokenCount = 2, StoredOutputEnabled = false };
            next.Tools.Add(ResponseTool.CreateFunctionTool("get_weather", BinaryData.FromString(WeatherParameters), true));
            return (await Client().CreateResponseAsync(next)).Value.Usage.InputTokenCount;
        }

        var question = ResponseItem.CreateUserMessageItem("Weather in Paris?");
        var withCall = await InputTokens(question, call);
        var withOutput = await InputTokens(question, call, ResponseItem.CreateFunctionCallOutputItem(call.CallId, "21 degrees and sunny over the whole city"));
        Assert.True(withCall > await InputTokens(question) + 5);
        Assert.True(withOutput > withCall + 5);
    }

    [Fact]
    public async Task A_streamed_required_call_opens_its_item_then_streams_its_arguments_as_generated()
    {
        var options = Hello(120);
        options.Tools.Add(ResponseTool.CreateFunctionTool("get_weather", BinaryData.FromString(WeatherParameters), true, "Current weather in a city"));
        options.ToolChoice = ResponseToolChoice.CreateRequiredChoice();
        options.StreamingEnabled = true;
        var events = new List<StreamingResponseUpdate>();
        await foreach (var update in await Client().CreateResponseStreamingAsync(options))
        {
            events.Add(update);
        }

        var added = Assert.IsType<FunctionCallResponseItem>(Assert.Single(events.OfType<StreamingResponseOutputItemAddedUpdate>()).Item);
        var deltas = events.OfType<StreamingResponseFunctionCallArgumentsDeltaUpdate>().ToList();
        var done = Assert.Single(events.OfType<StreamingResponseFunctionCallArgumentsDoneUpdate>());
        var completed = Assert.Single(events.OfType<StreamingResponseCompletedUpdate>()).Response;

        Assert.Equal("get_weather", added.FunctionName);
        Assert.True(events.IndexOf(events.OfType<StreamingResponseOutputItemAddedUpdate>().Single()) < events.IndexOf(deltas[0]));
        Assert.All(deltas, d => Assert.Equal(added.Id, d.ItemId));
        var arguments = string.Concat(deltas.Select(d => d.Delta.ToString()));
        Assert.Equal(arguments, done.FunctionArguments.ToString());
        var call = Assert.Single(completed.OutputItems.OfType<FunctionCallResponseItem>());
        Assert.Equal((added.Id, added.CallId, arguments), (call.Id, call.CallId, call.FunctionArguments.ToString()));
        Assert.Null(StructuredOutputSchemas.Problem(JsonSchema.FromText(WeatherParameters), arguments));
        Assert.True(deltas.Count > (arguments.Length + Appliance.Api.OpenAi.ToolCallStream.ArgumentPiece - 1) / Appliance.Api.OpenAi.ToolCallStream.ArgumentPiece,
            $"{deltas.Count} deltas: the arguments were not streamed as generated");
    }

    [Fact]
    public async Task A_required_custom_tool_streams_its_text_input_as_generated_and_answers_the_same_unstreamed()
    {
        var options = Hello(60);
        options.Tools.Add(new CustomTool("apply_patch") { ToolDescription = "Apply a patch to the working tree", ToolFormat = new CustomToolTextFormat() });
        options.ToolChoice = ResponseToolChoice.CreateRequiredChoice();
        var whole = Assert.IsType<CustomToolCallItem>(Assert.Single((await Client().CreateResponseAsync(options)).Value.OutputItems));

        options.StreamingEnabled = true;
        var events = new List<StreamingResponseUpdate>();
        await foreach (var update in await Client().CreateResponseStreamingAsync(options))
        {
            events.Add(update);
        }

        var added = Assert.IsType<CustomToolCallItem>(Assert.Single(events.OfType<StreamingResponseOutputItemAddedUpdate>()).Item);
        var deltas = events.OfType<StreamingResponseCustomToolCallInputDeltaUpdate>().ToList();
        var done = Assert.Single(events.OfType<StreamingResponseCustomToolCallInputDoneUpdate>());
        var final = events.OfType<StreamingResponseCompletedUpdate>().Select(u => u.Response).Concat(events.OfType<StreamingResponseIncompleteUpdate>().Select(u => u.Response)).Single();
        var call = Assert.IsType<CustomToolCallItem>(Assert.Single(final.OutputItems));

        Assert.Equal("apply_patch", added.ToolName);
        Assert.StartsWith("ctc_", added.Id, StringComparison.Ordinal);
        Assert.All(deltas, d => Assert.Equal(added.Id, d.ItemId));
        var input = string.Concat(deltas.Select(d => d.InputDelta));
        Assert.False(string.IsNullOrEmpty(input));
        Assert.Equal(input, done.Input);
        Assert.Equal((added.Id, added.CallId, input), (call.Id, call.CallId, call.Input));
        Assert.Equal((whole.ToolName, whole.Input), (call.ToolName, call.Input)); // greedy: streaming changes nothing
        Assert.True(deltas.Count > 2, $"{deltas.Count} deltas: the input was not streamed as generated");
    }

    [Fact]
    public async Task A_required_regex_custom_tool_gets_input_matching_its_grammar_and_the_grammar_is_echoed()
    {
        const string Definition = "(GET|POST) /[a-z]{1,8}(/[0-9]{1,3})?";
        var options = Hello(60);
        options.Temperature = 1f;
        options.Tools.Add(new CustomTool("http") { ToolDescription = "One HTTP request line", ToolFormat = new CustomToolGrammarFormat(Definition, CustomToolGrammarFormatSyntax.Regex) });
        options.ToolChoice = ResponseToolChoice.CreateRequiredChoice();
        for (var attempt = 0; attempt < 4; attempt++)
        {
            ResponseResult result = await Client().CreateResponseAsync(options);
            var call = Assert.IsType<CustomToolCallItem>(Assert.Single(result.OutputItems));
            Assert.Matches($"^(?:{Definition})$", call.Input);
            var echoed = Assert.IsType<CustomTool>(Assert.Single(result.Tools));
            var grammar = Assert.IsType<CustomToolGrammarFormat>(echoed.ToolFormat);
            Assert.Equal((Definition, CustomToolGrammarFormatSyntax.Regex), (grammar.Definition, grammar.Syntax));
        }
    }

    [Fact]
    public async Task A_Lark_custom_tool_such_as_a_patch_tool_gets_input_the_real_Lark_parser_accepts()
    {
        const string Grammar = """
            start: "*** Begin Patch" LF hunk+ "*** End Patch" LF?
            hunk: "*** Add File: " PATH LF ("+" TEXT? LF)+ | "*** Delete File: " PATH LF
            PATH: /[a-z]{1,8}\.[a-z]{1,3}/
            TEXT: /[^\n]{1,20}/
            %import common.LF
            """;
        var options = Hello(120);
        options.Temperature = 1f;
        options.Tools.Add(new CustomTool("apply_patch") { ToolDescription = "Apply a patch", ToolFormat = new CustomToolGrammarFormat(Grammar, CustomToolGrammarFormatSyntax.Lark) });
        options.ToolChoice = ResponseToolChoice.CreateRequiredChoice();
        var inputs = new List<string>();
        for (var attempt = 0; attempt < 3; attempt++)
        {
            ResponseResult result = await Client().CreateResponseAsync(options);
            if (result.Status == ResponseStatus.Completed)
            {
                inputs.Add(Assert.IsType<CustomToolCallItem>(Assert.Single(result.OutputItems)).Input);
            }

            var echoed = Assert.IsType<CustomToolGrammarFormat>(Assert.IsType<CustomTool>(Assert.Single(result.Tools)).ToolFormat);
            Assert.Equal((Grammar, CustomToolGrammarFormatSyntax.Lark), (echoed.Definition, echoed.Syntax));
        }

        Assert.NotEmpty(inputs); // the grammar's shortest patch fits the budget many times over
        Assert.All(Appliance.Tests.Common.ReferenceLark.Parses(Grammar, inputs), Assert.True);
    }

    [Fact]
    public async Task A_custom_tool_call_and_its_output_sent_back_reach_the_prompt()
    {
        async Task<int> InputTokens(params ResponseItem[] items)
        {
            var next = new CreateResponseOptions(ApplianceServer.Model, items) { MaxOutputTokenCount = 2, StoredOutputEnabled = false };
            next.Tools.Add(new CustomTool("apply_patch") { ToolDescription = "Apply a patch" });
            return (await Client().CreateResponseAsync(next)).Value.Usage.InputTokenCount;
        }

        var question = ResponseItem.CreateUserMessageItem("Rename x to y in a.py");
        var call = ResponseItem.CreateCustomToolCallItem("call_1", "*** Begin Patch\n*** Update File: a.py\n-x = 1\n+y = 1\n*** End Patch", "apply_patch");
        var withCall = await InputTokens(question, call);
        var withOutput = await InputTokens(question, call, ResponseItem.CreateCustomToolCallOutputItem("call_1", [ResponseContentPart.CreateInputTextPart("Done! Updated the following files: a.py")]));

        Assert.True(withCall > await InputTokens(question) + 10);
        Assert.True(withOutput > withCall + 5);
    }

    [Fact]
    public async Task A_json_schema_text_format_gives_valid_json()
    {
        const string Schema = """{"type":"object","properties":{"name":{"type":"string","maxLength":20},"tags":{"type":"array","items":{"enum":["a","b"]},"maxItems":3}},"required":["name","tags"],"additionalProperties":false}""";
        var options = Hello(120);
        options.Temperature = 1f;
        options.TextOptions = new ResponseTextOptions { TextFormat = ResponseTextFormat.CreateJsonSchemaFormat("card", BinaryData.FromString(Schema), jsonSchemaIsStrict: true) };
        ResponseResult result = await Client().CreateResponseAsync(options);

        Assert.Null(StructuredOutputSchemas.Problem(JsonSchema.FromText(Schema), result.GetOutputText()));
        Assert.Equal(ResponseStatus.Completed, result.Status);
    }

    [Fact]
    public async Task Hosted_tools_such_as_web_search_are_left_out_rather_than_refused()
    {
        using var response = await server.Http.PostAsync("/v1/responses", new StringContent(
            """{"model":"tiny","input":"x","max_output_tokens":3,"store":false,"tools":[{"type":"web_search","external_web_access":false}],"client_metadata":{"a":"b"}}""", Encoding.UTF8, "application/json"));
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal(0, body.RootElement.GetProperty("tools").GetArrayLength());
    }

    [Fact]
    public async Task A_named_custom_tool_is_echoed_as_custom_and_called_by_name()
    {
        using var response = await server.Http.PostAsync("/v1/responses", new StringContent(
            """{"model":"tiny","input":"x","max_output_tokens":40,"store":false,"tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{}}},{"type":"custom","name":"p","description":"Patch","format":{"type":"text"}}],"tool_choice":{"type":"custom","name":"p"}}""", Encoding.UTF8, "application/json"));
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = body.RootElement;

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("""{"type":"custom","name":"p","description":"Patch","format":{"type":"text"}}""", root.GetProperty("tools")[1].GetRawText());
        Assert.Equal("""{"type":"custom","name":"p"}""", root.GetProperty("tool_choice").GetRawText());
        var call = root.GetProperty("output").EnumerateArray().Single();
        Assert.Equal(("custom_tool_call", "p"), (call.GetProperty("type").GetString(), call.GetProperty("name").GetString()));
        Assert.Equal(JsonValueKind.String, call.GetProperty("input").ValueKind);
    }

    [Theory]
    [InlineData("""{"model":"tiny","input":"x","store":true}""", "store")]
    [InlineData("""{"model":"tiny","input":"x","previous_response_id":"resp_1"}""", "previous_response_id")]
    [InlineData("""{"model":"tiny","input":"x","tools":[{"type":"local_shell"}]}""", "tools")]
    [InlineData("""{"model":"tiny","input":"x","conversation":"conv_1"}""", "conversation")]
    [InlineData("""{"model":"tiny"}""", "input")]
    [InlineData("""{"model":"tiny","input":"x","tools":[{"type":"custom","name":"p","format":{"type":"grammar","syntax":"lark","definition":"start: a{\"x\"}"}}]}""", "tools[0].format.definition")]
    [InlineData("""{"model":"tiny","input":"x","tools":[{"type":"web_search"},{"type":"custom","name":"p","format":{"type":"grammar","syntax":"regex","definition":"a(?=b)"}}]}""", "tools[1].format.definition")]
    [InlineData("""{"model":"tiny","input":"x","tools":[{"type":"function","name":"bad name"}]}""", "tools[0].name")]
    public async Task What_a_stateless_appliance_cannot_do_is_refused_by_name(string body, string param)
    {
        using var response = await server.Http.PostAsync("/v1/responses", new StringContent(body, Encoding.UTF8, "application/json"));
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal(param, error.RootElement.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task An_item_reference_says_how_to_send_the_item_itself()
    {
        // What the Vercel AI SDK sends from its second turn unless told that nothing is stored.
        const string body = """{"model":"tiny","input":[{"role":"user","content":"x"},{"type":"item_reference","id":"msg_1"},{"role":"user","content":"y"}]}""";
        using var response = await server.Http.PostAsync("/v1/responses", new StringContent(body, Encoding.UTF8, "application/json"));
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal("input[1].type", error.RootElement.GetProperty("error").GetProperty("param").GetString());
        Assert.Contains("providerOptions.openai.store to false", error.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }
}
