using System.ClientModel;
using System.Text.Json;
using Appliance.Tests.Common;
using Json.Schema;
using OpenAI;
using OpenAI.Chat;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>Structured outputs through the official OpenAI .NET SDK: JSON mode and strict JSON schemas, plain and streamed.</summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class StructuredOutputSdkTests(ApplianceServer server)
{
    private const string Invoice = """{"type":"object","properties":{"customer":{"type":"string","maxLength":20},"lines":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string","format":"uuid"},"qty":{"type":"integer"},"unit":{"type":"string","enum":["kg","piece"]}},"required":["sku","qty","unit"],"additionalProperties":false},"minItems":1,"maxItems":3},"paid":{"type":["boolean","null"]}},"required":["customer","lines","paid"],"additionalProperties":false}""";

    private static readonly ChatMessage[] Conversation = [new UserChatMessage("Write the invoice as JSON.")];

    private ChatClient Client() => new(ApplianceServer.Model, new ApiKeyCredential(server.Token), new OpenAIClientOptions { Endpoint = server.ApiBase });

    [Fact]
    public async Task A_strict_json_schema_answer_parses_and_validates_every_time()
    {
        var options = new ChatCompletionOptions
        {
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("invoice", BinaryData.FromString(Invoice), jsonSchemaIsStrict: true),
            Temperature = 1f,
            MaxOutputTokenCount = 200,
        };
        var validator = JsonSchema.FromText(Invoice);
        for (var seed = 0; seed < 8; seed++)
        {
#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK
            options.Seed = seed;
#pragma warning restore OPENAI001
            ChatCompletion completion = await Client().CompleteChatAsync(Conversation, options);
            var text = completion.Content[0].Text;
            Assert.Null(StructuredOutputSchemas.Problem(validator, text));
            Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        }
    }

    [Fact]
    public async Task Beside_tools_the_answer_is_either_a_call_that_fits_its_function_or_json_that_fits_the_schema()
    {
        // As OpenAI's API (the Agents SDK's output types with tools, Pydantic AI's native output): the model decides.
        const string Weather = """{"type":"object","properties":{"city":{"type":"string","maxLength":12}},"required":["city"],"additionalProperties":false}""";
        var options = new ChatCompletionOptions
        {
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("invoice", BinaryData.FromString(Invoice), jsonSchemaIsStrict: true),
            Tools = { ChatTool.CreateFunctionTool("weather", "The weather in a city", BinaryData.FromString(Weather), functionSchemaIsStrict: true) },
            Temperature = 1f,
            MaxOutputTokenCount = 200,
        };
        var (invoices, calls) = (JsonSchema.FromText(Invoice), JsonSchema.FromText(Weather));
        var kinds = new HashSet<string>();
        for (var seed = 0; seed < 16; seed++)
        {
#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK
            options.Seed = seed;
#pragma warning restore OPENAI001
            ChatCompletion completion = await Client().CompleteChatAsync(Conversation, options);
            if (completion.ToolCalls.Count > 0)
            {
                Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
                Assert.All(completion.ToolCalls, call => Assert.Null(StructuredOutputSchemas.Problem(calls, call.FunctionArguments.ToString())));
                kinds.Add("call");
            }
            else
            {
                Assert.Null(StructuredOutputSchemas.Problem(invoices, completion.Content[0].Text));
                kinds.Add("json");
            }
        }

        Assert.Equal(["call", "json"], kinds.Order());
    }

    [Fact]
    public async Task A_streamed_json_schema_answer_joins_into_valid_json()
    {
        var options = new ChatCompletionOptions
        {
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("invoice", BinaryData.FromString(Invoice), jsonSchemaIsStrict: true),
            MaxOutputTokenCount = 200,
        };
        var text = new System.Text.StringBuilder();
        await foreach (var update in Client().CompleteChatStreamingAsync(Conversation, options))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        Assert.Null(StructuredOutputSchemas.Problem(JsonSchema.FromText(Invoice), text.ToString()));
    }

    [Fact]
    public async Task Log_probabilities_come_with_a_constrained_answer()
    {
        var options = new ChatCompletionOptions
        {
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("invoice", BinaryData.FromString(Invoice), jsonSchemaIsStrict: true),
            MaxOutputTokenCount = 200,
            IncludeLogProbabilities = true,
            TopLogProbabilityCount = 3,
        };
        ChatCompletion completion = await Client().CompleteChatAsync(Conversation, options);

        Assert.Null(StructuredOutputSchemas.Problem(JsonSchema.FromText(Invoice), completion.Content[0].Text));
        Assert.Equal(completion.Usage.OutputTokenCount, completion.ContentTokenLogProbabilities.Count);
        Assert.All(completion.ContentTokenLogProbabilities, p => Assert.True(float.IsFinite(p.LogProbability) && p.TopLogProbabilities.Count == 3));
    }

    [Fact]
    public async Task Json_mode_answers_with_an_object()
    {
        var options = new ChatCompletionOptions { ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat(), MaxOutputTokenCount = 120, Temperature = 1f };
        ChatCompletion completion = await Client().CompleteChatAsync(Conversation, options);

        using var parsed = JsonDocument.Parse(completion.Content[0].Text);
        Assert.Equal(JsonValueKind.Object, parsed.RootElement.ValueKind);
    }

    [Fact]
    public async Task A_pattern_is_enforced_while_sampling()
    {
        const string Schema = """{"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]{3}-\\d{2}$"},"note":{"type":"string","pattern":"^(yes|no)( [a-z]+)?$"}},"required":["code","note"],"additionalProperties":false}""";
        var options = new ChatCompletionOptions
        {
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("code", BinaryData.FromString(Schema), jsonSchemaIsStrict: true),
            Temperature = 1f,
            MaxOutputTokenCount = 80,
        };

        for (var i = 0; i < 5; i++)
        {
            ChatCompletion completion = await Client().CompleteChatAsync(Conversation, options);
            Assert.Null(StructuredOutputSchemas.Problem(Json.Schema.JsonSchema.FromText(Schema), completion.Content[0].Text));
        }
    }

    [Fact]
    public async Task A_schema_keyword_that_cannot_be_enforced_is_a_400_naming_it()
    {
        var options = new ChatCompletionOptions
        {
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("code", BinaryData.FromString("""{"type":"object","properties":{"code":{"type":"string","pattern":"^(?=A)[A-Z]{3}$"}},"required":["code"],"additionalProperties":false}"""), jsonSchemaIsStrict: true),
        };

        var refused = await Assert.ThrowsAsync<ClientResultException>(() => Client().CompleteChatAsync(Conversation, options));
        Assert.Equal(400, refused.Status);
        Assert.Contains("'pattern'", refused.Message, StringComparison.Ordinal);
    }
}
