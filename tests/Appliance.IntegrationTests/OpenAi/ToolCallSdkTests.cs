using System.ClientModel;
using System.Text;
using System.Text.Json;
using Appliance.Tests.Common;
using Json.Schema;
using OpenAI;
using OpenAI.Chat;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// Tool calling through the official OpenAI .NET SDK against the demo-sized model (random weights, ChatML, so the
/// Hermes convention): required and named calls are enforced while sampling, so even this model calls correctly.
/// </summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class ToolCallSdkTests(ApplianceServer server)
{
    private const string WeatherParameters = """{"type":"object","properties":{"city":{"type":"string","maxLength":30},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city","unit"],"additionalProperties":false}""";
    private const string LookupParameters = """{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"],"additionalProperties":false}""";

    private static readonly ChatTool Weather = ChatTool.CreateFunctionTool("get_weather", "Current weather in a city", BinaryData.FromString(WeatherParameters), functionSchemaIsStrict: true);
    private static readonly ChatTool Lookup = ChatTool.CreateFunctionTool("lookup", "Find an order", BinaryData.FromString(LookupParameters));

    private static readonly ChatMessage[] Question = [new UserChatMessage("What is the weather in Paris?")];

    private ChatClient Client() => new(ApplianceServer.Model, new ApiKeyCredential(server.Token), new OpenAIClientOptions { Endpoint = server.ApiBase });

    [Fact]
    public async Task A_required_call_is_a_valid_call_every_time()
    {
        var schema = JsonSchema.FromText(WeatherParameters);
        for (var seed = 0; seed < 6; seed++)
        {
#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK
            var options = new ChatCompletionOptions { Tools = { Weather, Lookup }, ToolChoice = ChatToolChoice.CreateRequiredChoice(), Temperature = 1f, MaxOutputTokenCount = 200, Seed = seed };
#pragma warning restore OPENAI001
            ChatCompletion completion = await Client().CompleteChatAsync(Question, options);

            Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
            Assert.NotEmpty(completion.ToolCalls);
            foreach (var call in completion.ToolCalls)
            {
                Assert.StartsWith("call_", call.Id, StringComparison.Ordinal);
                var parameters = call.FunctionName == "get_weather" ? schema : JsonSchema.FromText(LookupParameters);
                Assert.Null(StructuredOutputSchemas.Problem(parameters, call.FunctionArguments.ToString()));
            }
        }
    }

    [Fact]
    public async Task A_named_function_is_the_one_called_and_only_once_without_parallel_calls()
    {
        var options = new ChatCompletionOptions { Tools = { Weather, Lookup }, ToolChoice = ChatToolChoice.CreateFunctionChoice("lookup"), AllowParallelToolCalls = false, MaxOutputTokenCount = 120 };
        ChatCompletion completion = await Client().CompleteChatAsync(Question, options);

        var call = Assert.Single(completion.ToolCalls);
        Assert.Equal("lookup", call.FunctionName);
        Assert.Equal(JsonValueKind.Number, JsonDocument.Parse(call.FunctionArguments.ToString()).RootElement.GetProperty("id").ValueKind);
    }

    [Fact]
    public async Task A_streamed_forced_call_arrives_as_id_and_name_then_its_arguments_as_generated()
    {
        var options = new ChatCompletionOptions { Tools = { Weather }, ToolChoice = ChatToolChoice.CreateRequiredChoice(), AllowParallelToolCalls = false, MaxOutputTokenCount = 200 };
        string? id = null, name = null;
        var arguments = new StringBuilder();
        var pieces = 0;
        ChatFinishReason? finish = null;
        await foreach (var update in Client().CompleteChatStreamingAsync(Question, options))
        {
            foreach (var call in update.ToolCallUpdates)
            {
                id ??= call.ToolCallId;
                name ??= call.FunctionName;
                if (call.FunctionArgumentsUpdate is { } piece && !piece.ToMemory().IsEmpty)
                {
                    arguments.Append(piece.ToString());
                    pieces++;
                }
            }

            finish ??= update.FinishReason;
        }

        Assert.Equal(ChatFinishReason.ToolCalls, finish);
        Assert.StartsWith("call_", id, StringComparison.Ordinal);
        Assert.Equal("get_weather", name);
        Assert.Null(StructuredOutputSchemas.Problem(JsonSchema.FromText(WeatherParameters), arguments.ToString()));
        // A forced call streams its arguments as they are generated, a token or so a piece: more pieces than the
        // ArgumentPiece-sized ones a call sent whole at the end comes in.
        var wholeAtTheEnd = (arguments.Length + Appliance.Api.OpenAi.ToolCallStream.ArgumentPiece - 1) / Appliance.Api.OpenAi.ToolCallStream.ArgumentPiece;
        Assert.True(pieces > wholeAtTheEnd, $"{pieces} argument pieces for {arguments}");
    }

    [Fact]
    public async Task A_conversation_with_earlier_calls_and_their_results_is_answered()
    {
        ChatMessage[] conversation =
        [
            new UserChatMessage("What is the weather in Paris?"),
            new AssistantChatMessage([ChatToolCall.CreateFunctionToolCall("call_1", "get_weather", BinaryData.FromString("""{"city":"Paris","unit":"celsius"}"""))]),
            new ToolChatMessage("call_1", """{"temperature": 21}"""),
        ];
        ChatCompletion withTools = await Client().CompleteChatAsync(conversation, new ChatCompletionOptions { Tools = { Weather }, MaxOutputTokenCount = 4, Temperature = 0 });
        ChatCompletion without = await Client().CompleteChatAsync(conversation, new ChatCompletionOptions { Tools = { Weather }, ToolChoice = ChatToolChoice.CreateNoneChoice(), MaxOutputTokenCount = 4, Temperature = 0 });
        ChatCompletion plain = await Client().CompleteChatAsync([new UserChatMessage("What is the weather in Paris?")], new ChatCompletionOptions { MaxOutputTokenCount = 4, Temperature = 0 });

        // The tools' description is in the prompt unless tool_choice is none; the earlier call and its result always are.
        Assert.True(withTools.Usage.InputTokenCount > without.Usage.InputTokenCount + 20, $"{withTools.Usage.InputTokenCount} vs {without.Usage.InputTokenCount}");
        Assert.True(without.Usage.InputTokenCount > plain.Usage.InputTokenCount + 20, $"{without.Usage.InputTokenCount} vs {plain.Usage.InputTokenCount}");
    }

    [Fact]
    public async Task The_audit_log_names_the_tools_offered_and_called_but_not_their_arguments()
    {
        var probe = ChatTool.CreateFunctionTool("audit_probe_tool", "For the audit test", BinaryData.FromString("""{"type":"object","properties":{"secret":{"type":"string","enum":["hunter2"]}},"required":["secret"],"additionalProperties":false}"""));
        var options = new ChatCompletionOptions { Tools = { probe }, ToolChoice = ChatToolChoice.CreateRequiredChoice(), MaxOutputTokenCount = 60 };
        ChatCompletion completion = await Client().CompleteChatAsync(Question, options);
        Assert.Equal("audit_probe_tool", Assert.Single(completion.ToolCalls).FunctionName);

        using var events = JsonDocument.Parse(await server.Http.GetStringAsync("/audit/events?limit=1000"));
        var details = events.RootElement.GetProperty("data").EnumerateArray()
            .Select(e => e.TryGetProperty("detail", out var d) ? d.GetString() : null)
            .Where(d => d is not null && d.Contains("audit_probe_tool", StringComparison.Ordinal))
            .ToList();
        // The record written when the request was accepted, then the one written when it ended.
        Assert.Contains("tools offered: audit_probe_tool; tool_choice: required", details);
        Assert.Contains("tools offered: audit_probe_tool; tool_choice: required; called: audit_probe_tool", details);
        Assert.DoesNotContain(details, d => d!.Contains("hunter2", StringComparison.Ordinal));
    }
}
