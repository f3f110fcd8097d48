using System.Net;
using System.Text;
using System.Text.Json;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// A legacy completion's echo, as evaluation harnesses use it to score answers (lm-evaluation-harness's
/// local-completions: token-id prompts, echo, logprobs 1, max_tokens 1): the prompt comes back in front of the answer,
/// each of its tokens after the first scored, the first with null as OpenAI writes it.
/// </summary>
[Collection(ApplianceServerCollection.Name)]
public sealed class EchoTests(ApplianceServer server)
{
    private static int[] Prompt(int length, int seed) => [.. Enumerable.Range(0, length).Select(i => ((i * 7919) + seed) % 50000 + 1)];

    [Fact]
    public async Task An_evaluation_harness_request_gets_every_prompt_token_scored_then_its_greedy_answer()
    {
        int[][] prompts = [Prompt(30, 1), Prompt(12, 2)];
        var body = JsonSerializer.Serialize(new { model = "tiny", prompt = prompts, temperature = 0, max_tokens = 1, logprobs = 1, seed = 1234, echo = true });

        var answer = await Post(body);

        var choices = answer.GetProperty("choices").EnumerateArray().OrderBy(c => c.GetProperty("index").GetInt32()).ToList();
        Assert.Equal(2, choices.Count);
        for (var c = 0; c < 2; c++)
        {
            var logprobs = choices[c].GetProperty("logprobs");
            var tokens = logprobs.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToList();
            var scores = logprobs.GetProperty("token_logprobs").EnumerateArray().ToList();
            var top = logprobs.GetProperty("top_logprobs").EnumerateArray().ToList();
            var offsets = logprobs.GetProperty("text_offset").EnumerateArray().Select(o => o.GetInt32()).ToList();
            var length = prompts[c].Length + 1;
            Assert.Equal([length, length, length, length], new[] { tokens.Count, scores.Count, top.Count, offsets.Count });
            Assert.Equal(JsonValueKind.Null, scores[0].ValueKind);
            Assert.Equal(JsonValueKind.Null, top[0].ValueKind);
            for (var i = 1; i < length; i++)
            {
                var score = scores[i].GetDouble();
                Assert.InRange(score, double.NegativeInfinity, 0);
                var entries = top[i].EnumerateObject().ToList();
                Assert.InRange(entries.Count, 1, 2); // the likeliest token, and this token when it is another
                Assert.Contains(entries, e => e.Name == tokens[i] && Math.Abs(e.Value.GetDouble() - score) < 1e-6);
            }

            // The harness's is_greedy reads the answer's entry: greedy decoding took the likeliest token.
            Assert.Equal(top[^1].EnumerateObject().Max(e => e.Value.GetDouble()), scores[^1].GetDouble(), 6);
            Assert.Equal(0, offsets[0]);
            for (var i = 1; i < length; i++)
            {
                Assert.Equal(offsets[i - 1] + tokens[i - 1].Length, offsets[i]);
            }

            Assert.StartsWith(string.Concat(tokens[..^1]), choices[c].GetProperty("text").GetString(), StringComparison.Ordinal);
        }

        var usage = answer.GetProperty("usage");
        Assert.Equal((42, 2), (usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("completion_tokens").GetInt32()));
    }

    [Fact]
    public async Task A_prompt_scores_the_same_alone_with_no_answer_and_inside_a_longer_request()
    {
        var prompt = Prompt(25, 3);
        var scoredAlone = await Post(JsonSerializer.Serialize(new { model = "tiny", prompt, max_tokens = 0, logprobs = 0, echo = true }));
        var scoredBeside = await Post(JsonSerializer.Serialize(new { model = "tiny", prompt = new[] { Prompt(40, 4), prompt }, max_tokens = 3, temperature = 0, logprobs = 0, echo = true }));

        var alone = Scores(scoredAlone.GetProperty("choices")[0]);
        var beside = Scores(scoredBeside.GetProperty("choices").EnumerateArray().Single(c => c.GetProperty("index").GetInt32() == 1));
        Assert.Equal(prompt.Length, alone.Count);
        Assert.Equal(alone, beside[..prompt.Length], (a, b) => a is null ? b is null : b is not null && Math.Abs(a.Value - b.Value) < 1e-4);
        Assert.Equal("length", scoredAlone.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(0, scoredAlone.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Echo_without_logprobs_returns_the_prompt_as_sent_in_front_of_the_answer()
    {
        var onlyPrompt = await Post("""{"model":"tiny","prompt":"Once upon a time","max_tokens":0,"echo":true}""");
        var withAnswer = await Post("""{"model":"tiny","prompt":"Once upon a time","max_tokens":5,"temperature":0,"echo":true,"ignore_eos":true}""");
        var plain = await Post("""{"model":"tiny","prompt":"Once upon a time","max_tokens":5,"temperature":0,"ignore_eos":true}""");

        Assert.Equal("Once upon a time", onlyPrompt.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal(JsonValueKind.Null, onlyPrompt.GetProperty("choices")[0].GetProperty("logprobs").ValueKind);
        Assert.Equal("Once upon a time" + plain.GetProperty("choices")[0].GetProperty("text").GetString(), withAnswer.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task A_streamed_echo_sends_the_prompt_first_and_counts_text_offsets_on_across_chunks()
    {
        var body = """{"model":"tiny","prompt":"Once upon a time","max_tokens":4,"temperature":0,"logprobs":1,"echo":true,"stream":true,"ignore_eos":true}""";
        using var response = await server.Http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var raw = await response.Content.ReadAsStringAsync();
        var chunks = raw.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement.GetProperty("choices")[0]).ToList();
        var whole = await Post(body.Replace("\"stream\":true", "\"stream\":false", StringComparison.Ordinal));

        Assert.StartsWith("Once upon a time", chunks[0].GetProperty("text").GetString(), StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, chunks[0].GetProperty("logprobs").GetProperty("token_logprobs")[0].ValueKind);
        Assert.Equal(whole.GetProperty("choices")[0].GetProperty("text").GetString(), string.Concat(chunks.Select(c => c.GetProperty("text").GetString())));
        var streamedOffsets = chunks.Where(c => c.GetProperty("logprobs").ValueKind == JsonValueKind.Object)
            .SelectMany(c => c.GetProperty("logprobs").GetProperty("text_offset").EnumerateArray().Select(o => o.GetInt32())).ToList();
        var wholeOffsets = whole.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("text_offset").EnumerateArray().Select(o => o.GetInt32()).ToList();
        Assert.Equal(wholeOffsets, streamedOffsets);
        Assert.True(streamedOffsets.Count > 4, $"{streamedOffsets.Count} tokens: the prompt's and the 4 of the answer");
    }

    [Fact]
    public async Task No_tokens_without_echo_is_refused_naming_max_tokens()
    {
        using var response = await server.Http.PostAsync("/v1/completions", new StringContent("""{"model":"tiny","prompt":"Hi","max_tokens":0}""", Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("max_tokens", error.GetProperty("param").GetString());
    }

    private static List<double?> Scores(JsonElement choice) =>
        [.. choice.GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray().Select(s => s.ValueKind == JsonValueKind.Null ? (double?)null : s.GetDouble())];

    private async Task<JsonElement> Post(string body)
    {
        using var response = await server.Http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }
}
