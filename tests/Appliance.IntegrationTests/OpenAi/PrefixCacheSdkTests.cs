using System.ClientModel;
using System.Net.Http.Json;
using System.Text.Json;
using Anthropic;
using Anthropic.Models.Messages;
using OpenAI;
using OpenAI.Chat;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// Prefix caching through the API: a caller's second request with the same system prompt reports the reused tokens as
/// usage.prompt_tokens_details.cached_tokens (plain and streamed, and on /v1/responses), another tenant reuses nothing,
/// and the pool view shows the hits.
/// </summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class PrefixCacheSdkTests(ApplianceServer server)
{
    /// <summary>A system prompt of a few hundred tokens, new for each test so no other test has cached it.</summary>
    private static string SystemPrompt() =>
        $"Case {Guid.NewGuid():N}. " + string.Concat(Enumerable.Range(0, 60).Select(i => $"Rule {i}: answer in plain words. "));

    private ChatClient Client(string? token = null) =>
        new(ApplianceServer.Model, new ApiKeyCredential(token ?? server.Token), new OpenAIClientOptions { Endpoint = server.ApiBase });

    private static ChatCompletionOptions Options => new() { MaxOutputTokenCount = 4, Temperature = 0 };

    [Fact]
    public async Task The_second_request_with_the_same_system_prompt_reports_cached_tokens()
    {
        var system = SystemPrompt();
        ChatCompletion first = await Client().CompleteChatAsync([new SystemChatMessage(system), new UserChatMessage("Hello.")], Options);
        ChatCompletion second = await Client().CompleteChatAsync([new SystemChatMessage(system), new UserChatMessage("Something else entirely.")], Options);

        Assert.True(first.Usage.InputTokenCount > 300, $"{first.Usage.InputTokenCount} prompt tokens");
        Assert.Equal(0, first.Usage.InputTokenDetails.CachedTokenCount);
        var cached = second.Usage.InputTokenDetails.CachedTokenCount;
        Assert.True(cached >= 300 && cached < second.Usage.InputTokenCount, $"{cached} of {second.Usage.InputTokenCount} cached");
        Assert.Equal(0, cached % 32); // whole blocks
    }

    [Fact]
    public async Task A_streamed_answer_reports_cached_tokens_in_its_usage_chunk()
    {
        var system = SystemPrompt();
        await Client().CompleteChatAsync([new SystemChatMessage(system), new UserChatMessage("Hello.")], Options);

        ChatTokenUsage? usage = null;
        await foreach (var update in Client().CompleteChatStreamingAsync([new SystemChatMessage(system), new UserChatMessage("Again.")], Options))
        {
            usage = update.Usage ?? usage;
        }

        Assert.NotNull(usage);
        Assert.True(usage.InputTokenDetails.CachedTokenCount >= 300, $"{usage.InputTokenDetails.CachedTokenCount} cached");
    }

    [Fact]
    public async Task Another_user_with_the_same_system_prompt_reuses_nothing()
    {
        var system = SystemPrompt();
        await Client().CompleteChatAsync([new SystemChatMessage(system), new UserChatMessage("Hello.")], Options);
        var other = server.Running.MintToken($"other-{Guid.NewGuid():N}", ["appliance-user"]);

        ChatCompletion theirs = await Client(other).CompleteChatAsync([new SystemChatMessage(system), new UserChatMessage("Hello.")], Options);
        ChatCompletion mine = await Client().CompleteChatAsync([new SystemChatMessage(system), new UserChatMessage("Hello.")], Options);

        Assert.Equal(0, theirs.Usage.InputTokenDetails.CachedTokenCount);
        Assert.True(mine.Usage.InputTokenDetails.CachedTokenCount > 0);
        Assert.Equal(mine.Content[0].Text, theirs.Content[0].Text); // the same answer, computed apart
    }

    [Fact]
    public async Task The_messages_api_reports_cache_reads_apart_from_input_tokens_plain_and_streamed()
    {
        var client = new AnthropicClient { ApiKey = server.Token, BaseUrl = server.Http.BaseAddress!.ToString().TrimEnd('/'), MaxRetries = 0 };
        MessageCreateParams Ask(string question) => new()
        {
            MaxTokens = 4,
            Model = ApplianceServer.Model,
            System = SystemPrompt(),
            Messages = [new UserMessageParam { Content = question }],
        };
        var first = Ask("Hello.");
        var cold = await client.Messages.Create(first);

        var warm = await client.Messages.Create(first with { Messages = [new UserMessageParam { Content = "Another." }] });
        MessageDeltaUsage? streamed = null;
        await foreach (var item in client.Messages.CreateStreaming(first with { Messages = [new UserMessageParam { Content = "Once more." }] }))
        {
            if (item.TryPickDelta(out var end))
            {
                streamed = end!.Usage;
            }
        }

        Assert.Equal(0, cold.Usage.CacheReadInputTokens ?? 0);
        var read = warm.Usage.CacheReadInputTokens ?? 0;
        Assert.True(read >= 300, $"{read} read from the cache");
        Assert.True(warm.Usage.InputTokens is > 0 and < 100, $"{warm.Usage.InputTokens} computed");
        Assert.InRange(warm.Usage.InputTokens + read, cold.Usage.InputTokens - 5, cold.Usage.InputTokens + 5); // the same prompt but its question
        Assert.NotNull(streamed);
        Assert.True((streamed.CacheReadInputTokens ?? 0) >= 300, $"{streamed.CacheReadInputTokens} read in the stream");
    }

    [Fact]
    public async Task The_responses_api_reports_cached_input_tokens_and_the_pool_shows_the_hits()
    {
        var system = SystemPrompt();
        object Body(string question) => new { model = ApplianceServer.Model, instructions = system, input = question, max_output_tokens = 4, store = false };
        (await server.Http.PostAsJsonAsync("/v1/responses", Body("Hello."))).EnsureSuccessStatusCode();

        using var response = await server.Http.PostAsJsonAsync("/v1/responses", Body("And now?"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        using var json = JsonDocument.Parse(text);
        var usage = json.RootElement.GetProperty("usage");
        Assert.True(usage.GetProperty("input_tokens_details").GetProperty("cached_tokens").GetInt32() >= 300, usage.ToString());

        using var pool = JsonDocument.Parse(await server.Http.GetStringAsync("/admin/pool"));
        var model = pool.RootElement.GetProperty("models").EnumerateArray().Single(m => m.GetProperty("id").GetString() == ApplianceServer.Model);
        var cache = model.GetProperty("replicas")[0].GetProperty("prefixCache");
        Assert.Equal(2048, cache.GetProperty("capacityTokens").GetInt64()); // one context's worth by default
        Assert.True(cache.GetProperty("hitTokens").GetInt64() >= 300);
        Assert.InRange(cache.GetProperty("hitRate").GetDouble(), 0.01, 1);
    }
}
