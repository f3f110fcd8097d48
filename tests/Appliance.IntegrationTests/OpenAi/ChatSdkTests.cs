using System.ClientModel;
using System.Text;
using OpenAI;
using OpenAI.Chat;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>The official OpenAI .NET SDK, pointed at the appliance, works unchanged.</summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class ChatSdkTests(ApplianceServer server)
{
    private ChatClient Client(string model = ApplianceServer.Model) =>
        new(model, new ApiKeyCredential(server.Token), new OpenAIClientOptions { Endpoint = server.ApiBase });

    private static readonly ChatMessage[] Conversation = [new SystemChatMessage("You are terse."), new UserChatMessage("Say something.")];

    [Fact]
    public async Task Non_streaming_chat_returns_content_usage_and_finish_reason()
    {
        ChatCompletion completion = await Client().CompleteChatAsync(Conversation, new ChatCompletionOptions { MaxOutputTokenCount = 8, Temperature = 0 });

        Assert.StartsWith("chatcmpl-", completion.Id, StringComparison.Ordinal);
        Assert.Equal(ApplianceServer.Model, completion.Model);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.False(string.IsNullOrEmpty(completion.Content[0].Text));
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(8, completion.Usage.OutputTokenCount);
        Assert.True(completion.Usage.InputTokenCount > 10);
        Assert.Equal(completion.Usage.InputTokenCount + 8, completion.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task Streaming_chat_yields_the_same_text_as_non_streaming_with_usage()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 12, Temperature = 0 };
        ChatCompletion whole = await Client().CompleteChatAsync(Conversation, options);

        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        await foreach (var update in Client().CompleteChatStreamingAsync(Conversation, options))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }

            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }

        Assert.Equal(whole.Content[0].Text, text.ToString());
        Assert.Equal(ChatFinishReason.Length, finish);
        Assert.NotNull(usage);
        Assert.Equal(12, usage.OutputTokenCount);
        Assert.Equal(whole.Usage.InputTokenCount, usage.InputTokenCount);
    }

    [Fact]
    public async Task The_same_seed_reproduces_a_sampled_answer()
    {
        ChatCompletionOptions Options(long seed) => new() { MaxOutputTokenCount = 16, Temperature = 1f, Seed = seed };
        ChatCompletion first = await Client().CompleteChatAsync(Conversation, Options(42));
        ChatCompletion again = await Client().CompleteChatAsync(Conversation, Options(42));
        ChatCompletion other = await Client().CompleteChatAsync(Conversation, Options(4242));

        Assert.Equal(first.Content[0].Text, again.Content[0].Text);
        Assert.NotEqual(first.Content[0].Text, other.Content[0].Text);
    }

    [Fact]
    public async Task A_stop_sequence_cuts_the_answer_before_it()
    {
        ChatCompletion free = await Client().CompleteChatAsync(Conversation, new ChatCompletionOptions { MaxOutputTokenCount = 24, Temperature = 0 });
        var text = free.Content[0].Text;
        var stop = text.Substring(text.Length / 2, 2);

        var options = new ChatCompletionOptions { MaxOutputTokenCount = 24, Temperature = 0 };
        options.StopSequences.Add(stop);
        ChatCompletion stopped = await Client().CompleteChatAsync(Conversation, options);

        Assert.Equal(ChatFinishReason.Stop, stopped.FinishReason);
        Assert.Equal(text[..text.IndexOf(stop, StringComparison.Ordinal)], stopped.Content.Count == 0 ? string.Empty : stopped.Content[0].Text);
    }

    [Fact]
    public async Task Logprobs_come_back_for_each_token()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 4, Temperature = 0, IncludeLogProbabilities = true, TopLogProbabilityCount = 2 };
        ChatCompletion completion = await Client().CompleteChatAsync(Conversation, options);

        Assert.Equal(4, completion.ContentTokenLogProbabilities.Count);
        Assert.All(completion.ContentTokenLogProbabilities, l =>
        {
            Assert.True(l.LogProbability <= 0);
            Assert.Equal(2, l.TopLogProbabilities.Count);
        });
    }

    [Fact]
    public async Task An_alias_reaches_the_model_and_an_unknown_model_is_404()
    {
        ChatCompletion viaAlias = await Client("tiny-alias").CompleteChatAsync(Conversation, new ChatCompletionOptions { MaxOutputTokenCount = 2 });
        Assert.Equal(2, viaAlias.Usage.OutputTokenCount);

        var error = await Assert.ThrowsAsync<ClientResultException>(() => Client("no-such-model").CompleteChatAsync(Conversation));
        Assert.Equal(404, error.Status);
        Assert.Contains("model_not_found", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_sdk_lists_the_served_models()
    {
        var models = new OpenAIClient(new ApiKeyCredential(server.Token), new OpenAIClientOptions { Endpoint = server.ApiBase }).GetOpenAIModelClient();
        var list = (await models.GetModelsAsync()).Value;
        Assert.Contains(list, m => m.Id == ApplianceServer.Model && m.OwnedBy == "appliance");
    }
}
