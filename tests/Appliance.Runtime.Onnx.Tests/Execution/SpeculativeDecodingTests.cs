using Appliance.Engine;
using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>
/// Prompt-lookup speculative decoding on a real model with a shared past/present buffer: one run verifies several
/// drafted tokens with each position's own logits, rejected drafts are dropped from the cache, and the engine's
/// outputs are exactly those of plain decoding (greedy and seeded sampling), whether drafts are kept or not.
/// </summary>
public abstract class SpeculativeDecodingTests(TinyModelFixture model)
{
    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = 40, IgnoreEos = true };

    private static int[] Prompt(int length, int seed) => [.. Enumerable.Range(0, length).Select(j => ((seed * 7919) + (j * 104729)) % 50000)];

    /// <summary>A prompt that repeats a phrase: the kind of text prompt lookup finds drafts in.</summary>
    private static int[] Repetitive(int seed) => [.. Enumerable.Range(0, 6).SelectMany(_ => Prompt(7, seed))];

    [Fact]
    public void One_run_returns_each_drafted_positions_own_logits_and_rollback_forgets_the_rejected_ones()
    {
        using var runner = model.CreateRunner(8);
        Assert.True(runner.SupportsRollback);
        var prompt = Prompt(20, 1);
        var afterPrompt = runner.Execute([new RunnerSequence(1, prompt, 0)]).ToArray();
        int[] tokens = [ArgMax(afterPrompt), 5, 6];
        runner.Execute([new RunnerSequence(2, prompt, 0)]);
        var stepwise = tokens.Select((t, i) => runner.Execute([new RunnerSequence(2, new[] { t }, prompt.Length + i)]).ToArray()).ToList();

        var together = runner.Execute([new RunnerSequence(1, tokens, prompt.Length) { LogitsPositions = 3 }]).ToArray();

        var vocabulary = runner.Info.VocabularySize;
        for (var i = 0; i < 3; i++)
        {
            AssertClose(stepwise[i], together.AsSpan(i * vocabulary, vocabulary).ToArray());
        }

        // Keep the first token only, as if both drafts were rejected, and go on with another one.
        runner.Rollback(1, prompt.Length + 1);
        var after = runner.Execute([new RunnerSequence(1, new[] { 9 }, prompt.Length + 1)]).ToArray();
        runner.Execute([new RunnerSequence(3, prompt, 0)]);
        runner.Execute([new RunnerSequence(3, new[] { tokens[0] }, prompt.Length)]);
        AssertClose(runner.Execute([new RunnerSequence(3, new[] { 9 }, prompt.Length + 1)]).ToArray(), after);
    }

    [Fact]
    public async Task Greedy_outputs_are_those_of_plain_decoding()
    {
        using var plain = model.CreateEngine();
        using var speculative = model.CreateEngine(new SchedulerOptions { SpeculativeTokens = 4 });
        IEnumerable<int[]> prompts = [Repetitive(1), Repetitive(2), Prompt(30, 3), Prompt(9, 4)];
        var longer = Greedy with { MaxTokens = 120 };

        foreach (var prompt in prompts)
        {
            var expected = await Run(plain, prompt, longer);
            var actual = await Run(speculative, prompt, longer);
            Assert.Equal(expected.TokenIds, actual.TokenIds);
            Assert.Equal(expected.Text, actual.Text);
            Assert.Equal(expected.FinishReason, actual.FinishReason);
        }

        // A random model rarely repeats itself, so its drafts are mostly rejected: this proves the rejection path
        // and the rollback on real KV; the counting model's engine tests prove the kept path.
        Assert.Equal((0L, 0L), plain.SpeculationCounters);
    }

    [Theory]
    [InlineData(0)] // every draft right: up to 5 tokens per run
    [InlineData(3)] // every third draft wrong: kept up to it, the rest dropped from the cache
    public async Task Drafts_the_model_agrees_with_are_kept_on_real_kv_and_the_output_is_unchanged(int wrongEvery)
    {
        using var plain = model.CreateEngine();
        var prompt = Prompt(30, 11);
        var expected = (await Run(plain, prompt, Greedy)).TokenIds.ToArray();
        var drafter = new KnownContinuationDrafter(prompt.Length, expected, wrongEvery);
        using var speculative = model.CreateEngine(new SchedulerOptions { SpeculativeTokens = 4, DraftProposer = drafter });

        var actual = await Run(speculative, prompt, Greedy);

        Assert.Equal(expected, actual.TokenIds);
        var (drafted, accepted) = speculative.SpeculationCounters;
        Assert.True(accepted >= (wrongEvery == 0 ? 30 : 10), $"{accepted} of {drafted} drafts kept");
        Assert.True(wrongEvery == 0 ? accepted == drafted : accepted < drafted);
    }

    [Fact]
    public async Task Seeded_sampling_stop_strings_and_token_limits_give_what_plain_decoding_gives()
    {
        using var plain = model.CreateEngine();
        using var speculative = model.CreateEngine(new SchedulerOptions { SpeculativeTokens = 6 });
        var seeded = new SamplingParams { Temperature = 0.8f, TopP = 0.95f, Seed = 77, MaxTokens = 30, IgnoreEos = true };
        var free = await Run(plain, Repetitive(5), Greedy);
        var stop = free.Text.Substring(free.Text.Length / 2, 3);

        foreach (var sampling in new[] { seeded, Greedy with { MaxTokens = 3 }, Greedy with { StopStrings = [stop] }, seeded with { Logprobs = true, TopLogprobs = 2 } })
        {
            var expected = await Run(plain, Repetitive(5), sampling);
            var actual = await Run(speculative, Repetitive(5), sampling);
            Assert.Equal(expected.TokenIds, actual.TokenIds);
            Assert.Equal(expected.Text, actual.Text);
            Assert.Equal(expected.FinishReason, actual.FinishReason);
            Assert.Equal(expected.Logprobs.Select(l => l.TokenId), actual.Logprobs.Select(l => l.TokenId));
            Assert.Equal(expected.Usage.CompletionTokens, actual.Usage.CompletionTokens);
        }
    }

    [Fact]
    public async Task Concurrent_requests_decode_without_drafts_and_stay_exact()
    {
        using var plain = model.CreateEngine();
        using var speculative = model.CreateEngine(new SchedulerOptions { SpeculativeTokens = 4 });
        var prompts = Enumerable.Range(0, 4).Select(Repetitive).ToList();

        var expected = await Task.WhenAll(prompts.Select(p => Run(plain, p, Greedy)));
        var actual = await Task.WhenAll(prompts.Select(p => Run(speculative, p, Greedy)));

        for (var i = 0; i < prompts.Count; i++)
        {
            Assert.Equal(expected[i].TokenIds, actual[i].TokenIds);
        }
    }


    private static Task<GenerationResult> Run(GenerationEngine engine, int[] prompt, SamplingParams sampling) =>
        engine.Submit(new GenerationRequest(Guid.NewGuid().ToString("N"), prompt, sampling)).CollectAsync();

    private static int ArgMax(float[] values) => Array.IndexOf(values, values.Max());

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-3f * Math.Max(1, Math.Abs(expected[i])), $"logit {i}: {expected[i]} vs {actual[i]}");
        }
    }
}

[Collection(SharedBufferModelCollection.Name)]
public sealed class SharedBufferSpeculativeDecodingTests(SharedBufferModelFixture model) : SpeculativeDecodingTests(model);

[Collection(LlamaModelCollection.Name)]
public sealed class LlamaSpeculativeDecodingTests(LlamaModelFixture model) : SpeculativeDecodingTests(model);

[Collection(Qwen2ModelCollection.Name)]
public sealed class Qwen2SpeculativeDecodingTests(Qwen2ModelFixture model) : SpeculativeDecodingTests(model);
