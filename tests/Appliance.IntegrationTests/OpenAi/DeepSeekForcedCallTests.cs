using System.ClientModel;
using System.Text;
using Appliance.Api.OpenAi;
using Appliance.Tests.Common;
using Json.Schema;
using OpenAI;
using OpenAI.Chat;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// A forced call in DeepSeek's layouts (marker tokens around a bare name) streamed through the official OpenAI SDK from
/// a decoder of DeepSeek V3's vocabulary with its real tokenizer and template: the call opens once its name is written
/// and its arguments arrive as they are generated, as for the JSON formats.
/// </summary>
public sealed class DeepSeekForcedCallTests : IDisposable
{
    private const string WeatherParameters = """{"type":"object","properties":{"city":{"type":"string","maxLength":30},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["city","unit"],"additionalProperties":false}""";

    private readonly TempFolder _root = new("deepseek-calls");

    [Theory]
    [InlineData("deepseek_v3")]
    [InlineData("deepseek_v3_1")]
    public async Task A_streamed_forced_call_arrives_as_name_then_arguments_as_generated(string format)
    {
        var folder = ModelFamilyTests.WriteFamilyModel(_root, "deepseek_v3", "<｜end▁of▁sentence｜>");
        await using var running = await RunningAppliance.StartAsync(
            $"--Models:deepseek:Path={folder}", $"--Models:deepseek:ToolCallFormat={format}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=Warning");
        await running.WaitUntilReadyAsync();
        var client = new ChatClient("deepseek", new ApiKeyCredential(running.Token!), new OpenAIClientOptions { Endpoint = new Uri(running.Http.BaseAddress!, "v1") });

        var weather = ChatTool.CreateFunctionTool("get_weather", "Current weather in a city", BinaryData.FromString(WeatherParameters), functionSchemaIsStrict: true);
        var options = new ChatCompletionOptions { Tools = { weather }, ToolChoice = ChatToolChoice.CreateFunctionChoice("get_weather"), AllowParallelToolCalls = false, MaxOutputTokenCount = 200 };
        string? id = null, name = null;
        var arguments = new StringBuilder();
        var pieces = 0;
        ChatFinishReason? finish = null;
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("What is the weather in Paris?")], options))
        {
            foreach (var call in update.ToolCallUpdates)
            {
                id ??= call.ToolCallId;
                name ??= call.FunctionName;
                if (call.FunctionArgumentsUpdate is { } piece && !piece.ToMemory().IsEmpty)
                {
                    Assert.NotNull(name); // arguments only after the call's opening
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
        // Streamed as generated: more pieces than the ArgumentPiece-sized ones of a call sent whole at the end.
        var wholeAtTheEnd = (arguments.Length + ToolCallStream.ArgumentPiece - 1) / ToolCallStream.ArgumentPiece;
        Assert.True(pieces > wholeAtTheEnd, $"{pieces} argument pieces for {arguments}");
    }

    public void Dispose() => _root.Dispose();
}
