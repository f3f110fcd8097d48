using System.Net;
using System.Text;
using System.Text.Json;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>The legacy /v1/completions as OpenAI's clients read it: its logprobs object, and several prompts in one request.</summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class CompletionsTests(ApplianceServer server)
{
    [Fact]
    public async Task Each_top_logprobs_entry_holds_the_sampled_token_and_each_text_once()
    {
        var answer = await Post("""{"model":"tiny","prompt":"Once upon a time","max_tokens":12,"logprobs":2,"temperature":1.5,"seed":7,"ignore_eos":true}""");

        var logprobs = answer.GetProperty("choices")[0].GetProperty("logprobs");
        var tokens = logprobs.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToList();
        var chosen = logprobs.GetProperty("token_logprobs").EnumerateArray().Select(t => t.GetDouble()).ToList();
        var top = logprobs.GetProperty("top_logprobs").EnumerateArray().ToList();
        Assert.Equal(12, tokens.Count);
        for (var i = 0; i < tokens.Count; i++)
        {
            var entries = top[i].EnumerateObject().ToList();
            Assert.InRange(entries.Count, 1, 3); // logprobs + 1 at most: the sampled token may be outside the two likeliest
            Assert.Equal(entries.Count, entries.Select(e => e.Name).Distinct(StringComparer.Ordinal).Count());
            Assert.Contains(entries, e => e.Name == tokens[i] && Math.Abs(e.Value.GetDouble() - chosen[i]) < 1e-6);
        }
    }

    [Fact]
    public async Task Each_prompt_leaves_its_own_room_for_its_answer()
    {
        // A 2,048-token context: max_tokens at the appliance's limit is a ceiling, met by what each prompt leaves.
        int[] Prompt(int length, int seed) => [.. Enumerable.Range(0, length).Select(i => ((i * 7919) + seed) % 50000 + 1)];
        var body = JsonSerializer.Serialize(new { model = "tiny", prompt = new[] { Prompt(2000, 1), Prompt(1900, 2) }, max_tokens = 4096, ignore_eos = true });

        var answer = await Post(body);

        Assert.Equal(48 + 148, answer.GetProperty("usage").GetProperty("completion_tokens").GetInt32()); // not 48 each
        Assert.All(answer.GetProperty("choices").EnumerateArray(), c => Assert.Equal("length", c.GetProperty("finish_reason").GetString()));
    }

    [Fact]
    public async Task A_prompt_the_context_cannot_hold_is_named_as_the_prompt()
    {
        var body = JsonSerializer.Serialize(new { model = "tiny", prompt = Enumerable.Range(1, 2040).ToArray(), max_tokens = 100 });
        using var response = await server.Http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("prompt", error.GetProperty("param").GetString());
        Assert.Contains("(2040 in the prompt, 100 in the completion)", error.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    private async Task<JsonElement> Post(string body)
    {
        using var response = await server.Http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }
}
