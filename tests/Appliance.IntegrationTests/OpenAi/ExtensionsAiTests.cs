using System.ClientModel;
using Microsoft.Extensions.AI;
using OpenAI;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>Microsoft.Extensions.AI's IChatClient over the OpenAI client, with its function-invocation loop.</summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class ExtensionsAiTests(ApplianceServer server)
{
    [Fact]
    public async Task The_function_invocation_loop_calls_our_function_and_sends_its_result_back()
    {
        var invoked = new List<string>();
        var weather = AIFunctionFactory.Create((string city) =>
        {
            invoked.Add(city);
            return "21 degrees and sunny";
        }, "get_weather", "Current weather in a city");

        var inner = new OpenAIClient(new ApiKeyCredential(server.Token), new OpenAIClientOptions { Endpoint = server.ApiBase })
            .GetChatClient(ApplianceServer.Model)
            .AsIChatClient();
        using var client = new ChatClientBuilder(inner).UseFunctionInvocation(configure: loop => loop.MaximumIterationsPerRequest = 2).Build();

        var response = await client.GetResponseAsync(
            "What is the weather in Paris?",
            new ChatOptions { Tools = [weather], ToolMode = ChatToolMode.RequireSpecific("get_weather"), MaxOutputTokens = 80 });

        Assert.NotEmpty(invoked); // the model's call reached our function, with a string argument the schema demanded
        Assert.Contains(response.Messages, m => m.Contents.OfType<FunctionResultContent>().Any(r => Equals(r.Result?.ToString(), "21 degrees and sunny")));
        Assert.Contains(response.Messages, m => m.Contents.OfType<FunctionCallContent>().Any(c => c.Name == "get_weather"));
    }
}
