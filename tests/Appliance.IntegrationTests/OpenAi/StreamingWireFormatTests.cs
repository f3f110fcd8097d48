using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>The exact server-sent event framing OpenAI clients parse.</summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class StreamingWireFormatTests(ApplianceServer server)
{
    [Fact]
    public async Task Chat_stream_frames_chunks_then_usage_then_done()
    {
        var body = """{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":6,"temperature":0,"n":2}""";
        using var response = await server.Http.PostAsync("/v1/chat/completions", Json(body));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var raw = await response.Content.ReadAsStringAsync();

        Assert.EndsWith("data: [DONE]\n\n", raw, StringComparison.Ordinal);
        var events = raw.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(events, e => Assert.StartsWith("data: ", e, StringComparison.Ordinal));
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement).ToList();

        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.Single(chunks.Select(c => c.GetProperty("created").GetInt64()).Distinct());
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.All(chunks, c => Assert.True(c.TryGetProperty("system_fingerprint", out _)));

        var usageChunk = chunks[^1];
        Assert.Equal(0, usageChunk.GetProperty("choices").GetArrayLength());
        Assert.Equal(12, usageChunk.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.All(chunks[..^1], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("usage").ValueKind));

        foreach (var index in new[] { 0, 1 })
        {
            var choice = chunks[..^1].Select(c => c.GetProperty("choices")[0]).Where(c => c.GetProperty("index").GetInt32() == index).ToList();
            Assert.Equal("assistant", choice[0].GetProperty("delta").GetProperty("role").GetString());
            Assert.All(choice[..^1], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("finish_reason").ValueKind));
            Assert.Equal("length", choice[^1].GetProperty("finish_reason").GetString());
        }
    }

    [Fact]
    public async Task Without_include_usage_chunks_carry_no_usage_field()
    {
        var body = """{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"stream":true,"max_tokens":3}""";
        using var response = await server.Http.PostAsync("/v1/chat/completions", Json(body));
        var raw = await response.Content.ReadAsStringAsync();
        var chunks = raw.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)[..^1].Select(e => JsonDocument.Parse(e[6..]).RootElement).ToList();
        Assert.All(chunks, c => Assert.False(c.TryGetProperty("usage", out _)));
        Assert.All(chunks, c => Assert.Equal(1, c.GetProperty("choices").GetArrayLength()));
    }

    [Fact]
    public async Task Non_streaming_n_returns_several_choices()
    {
        var body = """{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"n":3,"seed":7}""";
        using var response = await server.Http.PostAsync("/v1/chat/completions", Json(body));
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal("chat.completion", json.GetProperty("object").GetString());
        var choices = json.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal([0, 1, 2], choices.Select(c => c.GetProperty("index").GetInt32()));
        Assert.All(choices, c => Assert.Equal("assistant", c.GetProperty("message").GetProperty("role").GetString()));
        Assert.Equal(15, json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Legacy_completions_accept_text_and_token_prompts()
    {
        using var text = await server.Http.PostAsync("/v1/completions", Json("""{"model":"tiny","prompt":["Once upon","a time"],"max_tokens":4,"temperature":0}"""));
        var json = JsonDocument.Parse(await text.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("text_completion", json.GetProperty("object").GetString());
        Assert.Equal(2, json.GetProperty("choices").GetArrayLength());
        Assert.Equal(8, json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());

        using var tokens = await server.Http.PostAsync("/v1/completions", Json("""{"model":"tiny","prompt":[7454, 2402],"max_tokens":3,"stream":true}"""));
        var raw = await tokens.Content.ReadAsStringAsync();
        Assert.Contains("\"object\":\"text_completion\"", raw, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]\n\n", raw, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Models_show_context_length_and_digest()
    {
        var json = JsonDocument.Parse(await server.Http.GetStringAsync("/v1/models/tiny")).RootElement;
        Assert.Equal("model", json.GetProperty("object").GetString());
        Assert.Equal(2048, json.GetProperty("context_length").GetInt32());
        Assert.Equal(2048, json.GetProperty("max_model_len").GetInt32()); // vLLM's name for it
        Assert.StartsWith("sha256:", json.GetProperty("digest").GetString(), StringComparison.Ordinal);
        Assert.Equal("ready", json.GetProperty("state").GetString());
        var defaults = json.GetProperty("sampling_defaults"); // this model names none: OpenAI's
        Assert.Equal((1f, 1f), (defaults.GetProperty("temperature").GetSingle(), defaults.GetProperty("top_p").GetSingle()));
        Assert.True(defaults.GetProperty("max_tokens").GetInt32() > 0);

        using var missing = await server.Http.GetAsync("/v1/models/missing");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_stream_frees_its_slot()
    {
        var cancelledBefore = server.Engine.CancelledRequests;
        var body = """{"model":"tiny","messages":[{"role":"user","content":"Hi"}],"stream":true,"max_tokens":2000,"n":4,"ignore_eos":true}""";
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = Json(body) })
        using (var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            await using var stream = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[256];
            Assert.True(await stream.ReadAsync(buffer) > 0);
            await WaitUntil(() => server.Engine.RunningRequests == 4, "the request's four choices never started running");
        }

        await WaitUntil(() => server.Engine.RunningRequests == 0 && server.Engine.KvCacheUsedTokens == 0, "the cancelled request still holds its slot");
        Assert.Equal(cancelledBefore + 4, server.Engine.CancelledRequests);
    }

    private static async Task WaitUntil(Func<bool> condition, string failure)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, failure);
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task Health_endpoints_answer()
    {
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/health/live")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/health/ready")).StatusCode);
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
}
