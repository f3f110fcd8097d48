using Appliance.Engine;
using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Runtime.Onnx.Tokenization;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>The engine on a real ONNX model: its tokens equal the reference, alone, batched and arriving over time.</summary>
public abstract class EngineCorrectnessTests(TinyModelFixture model)
{
    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = 12, IgnoreEos = true };

    /// <summary>Eight prompts of different lengths (3 to 40 tokens).</summary>
    public static int[][] Prompts { get; } =
        [.. Enumerable.Range(0, 8).Select(i => Enumerable.Range(0, 3 + (i * 5) + (i % 3)).Select(j => ((i * 7919) + (j * 104729)) % 50000).ToArray())];

    [Fact]
    public async Task Greedy_tokens_equal_the_reference_forward_pass()
    {
        using var engine = model.CreateEngine();
        var result = await Run(engine, Prompts[3], Greedy);

        var expected = model.Greedy(Prompts[3], Greedy.MaxTokens);
        Assert.True(expected.Distinct().Count() > 4, "the reference output should vary, or equality proves little");
        Assert.Equal(expected, result.TokenIds);
        Assert.Equal(FinishReason.Length, result.FinishReason);
        Assert.Equal((Prompts[3].Length, 12), (result.Usage.PromptTokens, result.Usage.CompletionTokens));
    }

    [Fact]
    public async Task Eight_concurrent_requests_of_different_lengths_each_equal_their_reference()
    {
        using var engine = model.CreateEngine();
        var results = await Task.WhenAll(Prompts.Select(p => Run(engine, p, Greedy)));

        for (var i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(model.Greedy(Prompts[i], Greedy.MaxTokens), results[i].TokenIds);
        }
    }

    [Fact]
    public async Task A_request_in_a_busy_batch_gets_the_tokens_it_gets_alone_greedy_and_seeded()
    {
        var seeded = new SamplingParams { Temperature = 0.9f, TopP = 0.95f, TopK = 50, Seed = 1234, MaxTokens = 16, IgnoreEos = true };
        using var engine = model.CreateEngine();
        var aloneGreedy = await Run(engine, Prompts[5], Greedy);
        var aloneSeeded = await Run(engine, Prompts[5], seeded);

        // Busy: other requests arrive first and keep running (different seeds, long outputs).
        var others = Prompts.Take(5).Select((p, i) => Run(engine, p, seeded with { Seed = i, MaxTokens = 30 })).ToList();
        var busyGreedy = Run(engine, Prompts[5], Greedy);
        var busySeeded = Run(engine, Prompts[5], seeded);
        await Task.WhenAll(others);

        Assert.Equal(aloneGreedy.TokenIds, (await busyGreedy).TokenIds);
        Assert.Equal(aloneSeeded.TokenIds, (await busySeeded).TokenIds);
        Assert.NotEqual(aloneGreedy.TokenIds, aloneSeeded.TokenIds);
    }

    [Fact]
    public async Task Staggered_arrivals_join_the_running_batch_and_stay_exact()
    {
        using var engine = model.CreateEngine();
        var running = new List<Task<GenerationResult>>();
        foreach (var prompt in Prompts)
        {
            running.Add(Run(engine, prompt, Greedy with { MaxTokens = 20 }));
            await Task.Delay(15);
        }

        var results = await Task.WhenAll(running);
        for (var i = 0; i < Prompts.Length; i++)
        {
            Assert.Equal(model.Greedy(Prompts[i], 20), results[i].TokenIds);
        }
    }

    [Fact]
    public async Task A_prompt_longer_than_the_prefill_budget_is_prefilled_in_chunks()
    {
        var prompt = Enumerable.Range(0, 150).Select(i => (i * 331) % 50000).ToArray();
        using var engine = model.CreateEngine(new SchedulerOptions { PrefillTokenBudget = 32 });
        var shortOne = Run(engine, Prompts[0], Greedy);
        var result = await Run(engine, prompt, Greedy);

        Assert.Equal(model.Greedy(prompt, Greedy.MaxTokens), result.TokenIds);
        Assert.Equal(model.Greedy(Prompts[0], Greedy.MaxTokens), (await shortOne).TokenIds);
    }

    [Fact]
    public async Task Requests_preempted_for_another_tenant_recompute_and_still_equal_their_reference()
    {
        // A batch of 2, held a few decode steps in while the other tenant arrives, so the flood is surely decoding then
        // however slowly a loaded machine runs; the arrival preempts one.
        const int FloodTokens = 40;
        using var runner = new HoldingRunner(model.CreateRunner(2), HoldingRunner.AtDecodeStep(2, 4));
        using var engine = new GenerationEngine(runner, Gpt2Tokenizer.Instance, new SchedulerOptions { MaxBatchSize = 2 });
        var flood = Prompts.Take(4).Select(p => engine.Submit(new GenerationRequest(Guid.NewGuid().ToString("N"), p, Greedy with { MaxTokens = FloodTokens }) { Tenant = "a" }).CollectAsync()).ToList();
        Assert.True(runner.WaitUntilHeld(TimeSpan.FromSeconds(30)), "the flood never reached its decoding");
        Assert.Equal((2, 2), (engine.RunningRequests, engine.QueuedRequests));
        var other = engine.Submit(new GenerationRequest("b", Prompts[6], Greedy) { Tenant = "b" }).CollectAsync();
        runner.Resume();
        var results = await Task.WhenAll(flood);

        Assert.True(engine.Preemptions >= 1);
        for (var i = 0; i < flood.Count; i++)
        {
            Assert.Equal(model.Greedy(Prompts[i], FloodTokens), results[i].TokenIds);
        }

        Assert.Equal(model.Greedy(Prompts[6], Greedy.MaxTokens), (await other).TokenIds);
    }

    [Fact]
    public async Task A_sequence_that_reaches_the_context_length_finishes_with_length()
    {
        var prompt = Enumerable.Range(0, model.Spec.ContextLength - 3).Select(i => (i * 17) % 50000).ToArray();
        using var engine = model.CreateEngine();
        var result = await Run(engine, prompt, Greedy with { MaxTokens = 100 });

        Assert.Equal(FinishReason.Length, result.FinishReason);
        Assert.Equal(3, result.TokenIds.Count);
    }

    [Fact]
    public async Task Disposing_a_stream_cancels_the_request_and_frees_its_slot()
    {
        // The real runner, slowed to at least 20 ms a step, so the 200-token request (4 s) is still running when the
        // reader goes away even if a busy machine pauses the test for a few seconds.
        using var runner = new ThrottledRunner(model.CreateRunner(), TimeSpan.FromMilliseconds(20));
        using var engine = new GenerationEngine(runner, Gpt2Tokenizer.Instance, new SchedulerOptions());
        var stream = engine.Submit(new GenerationRequest("cancel-me", Prompts[1], Greedy with { MaxTokens = 200 }));
        await using (var reader = stream.GetAsyncEnumerator())
        {
            Assert.True(await reader.MoveNextAsync());
        }

        await stream.DisposeAsync();
        await WaitUntil(() => engine.RunningRequests == 0 && engine.KvCacheUsedTokens == 0);
        Assert.Equal(1, engine.CancelledRequests);

        // The engine keeps serving afterwards, with the same exact tokens.
        var after = await Run(engine, Prompts[2], Greedy);
        Assert.Equal(model.Greedy(Prompts[2], Greedy.MaxTokens), after.TokenIds);
    }

    [Fact]
    public async Task Stop_strings_end_generation_and_are_never_emitted()
    {
        using var engine = model.CreateEngine();
        var free = await Run(engine, Prompts[4], Greedy with { MaxTokens = 24 });
        var text = free.Text;
        Assert.True(text.Length > 8, $"too little text to test with: '{text}'");
        var stop = text.Substring(text.Length / 2, 3);
        var cut = text.IndexOf(stop, StringComparison.Ordinal);

        var stopped = await Run(engine, Prompts[4], Greedy with { MaxTokens = 24, StopStrings = [stop] });

        Assert.Equal(FinishReason.Stop, stopped.FinishReason);
        Assert.Equal(text[..cut], stopped.Text);
        Assert.DoesNotContain(stop, stopped.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Logprobs_are_returned_for_each_chosen_token()
    {
        using var engine = model.CreateEngine();
        var result = await Run(engine, Prompts[2], Greedy with { MaxTokens = 4, Logprobs = true, TopLogprobs = 3 });

        Assert.Equal(4, result.Logprobs.Count);
        foreach (var (token, logprob) in result.TokenIds.Zip(result.Logprobs))
        {
            Assert.Equal(token, logprob.TokenId);
            Assert.True(logprob.Logprob <= 0f);
            Assert.Equal(3, logprob.TopAlternatives.Count);
            Assert.Equal(token, logprob.TopAlternatives[0].TokenId); // greedy picks the most likely
            Assert.Equal(logprob.Logprob, logprob.TopAlternatives[0].Logprob, 5);
        }
    }

    private static Task<GenerationResult> Run(GenerationEngine engine, int[] prompt, SamplingParams sampling) =>
        engine.Submit(new GenerationRequest(Guid.NewGuid().ToString("N"), prompt, sampling)).CollectAsync();

    private static async Task WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached within 10 s");
            await Task.Delay(10);
        }
    }
}

[Collection(ConcatModelCollection.Name)]
public sealed class ConcatEngineCorrectnessTests(ConcatModelFixture model) : EngineCorrectnessTests(model);

[Collection(SharedBufferModelCollection.Name)]
public sealed class SharedBufferEngineCorrectnessTests(SharedBufferModelFixture model) : EngineCorrectnessTests(model);

[Collection(LlamaModelCollection.Name)]
public sealed class LlamaEngineCorrectnessTests(LlamaModelFixture model) : EngineCorrectnessTests(model);

[Collection(Qwen2ModelCollection.Name)]
public sealed class Qwen2EngineCorrectnessTests(Qwen2ModelFixture model) : EngineCorrectnessTests(model);
