using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Tests.Common;

namespace Appliance.Engine.Tests.Scheduling;

/// <summary>
/// Scoring a prompt (a legacy completion's echo with logprobs), on the counting model (next token = last + 1, logit 10,
/// every other 0): each prompt token after the first gets its log probability from the position before it, in chunks
/// no wider than a run's logits rows, computed whole and alone.
/// </summary>
public sealed class PromptScoringTests
{
    private const int Vocabulary = 300;

    // log softmax of the counting model's row: 10 for the next token, 0 for the 299 others.
    private static readonly double Likely = 10 - Math.Log(Math.Exp(10) + (Vocabulary - 1));
    private static readonly double Unlikely = -Math.Log(Math.Exp(10) + (Vocabulary - 1));

    [Fact]
    public async Task Every_prompt_token_after_the_first_is_scored_by_the_position_before_it_in_chunks_a_run_can_return()
    {
        // Counts up except at 3 places (the jumps to 50, 70 and 90): those tokens are unlikely, all others likely.
        int[] prompt = [.. Enumerable.Range(1, 8), .. Enumerable.Range(50, 6), .. Enumerable.Range(70, 4), .. Enumerable.Range(90, 3)];
        using var runner = new CountingRunner(vocabularySize: Vocabulary, contextLength: 64, maxBatchSize: 8);
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions());

        var deltas = await Read(engine.Submit(new GenerationRequest("r", prompt, new SamplingParams { Temperature = 0, MaxTokens = 2, Logprobs = true, TopLogprobs = 1, IgnoreEos = true }) { PromptLogprobs = true }));

        var scores = Assert.Single(deltas, d => d.PromptLogprobs is not null).PromptLogprobs!;
        Assert.Same(deltas[0].PromptLogprobs, scores); // on the first delta, and only there
        Assert.Equal(prompt[1..], scores.Select(s => s.TokenId));
        var jumps = new[] { 8, 14, 18 }; // indexes of 50, 70 and 90 in the prompt
        for (var i = 1; i < prompt.Length; i++)
        {
            Assert.Equal(jumps.Contains(i) ? Unlikely : Likely, scores[i - 1].Logprob, 4);
            var top = Assert.Single(scores[i - 1].TopAlternatives); // the model's own choice after the token before
            Assert.Equal(prompt[i - 1] + 1, top.TokenId);
            Assert.Equal(Likely, top.Logprob, 4);
        }

        Assert.Equal([93, 94], deltas.SelectMany(d => d.TokenIds));
        // 21 tokens with every position's logits, at most 8 rows a run: chunks of 8, 8 and 5, each run alone.
        var prefill = runner.Batches.Where(b => b[0].NewTokens.Length > 1).ToList();
        Assert.Equal([8, 8, 5], prefill.Select(b => Assert.Single(b).NewTokens.Length));
        Assert.All(prefill, b => Assert.Equal(b[0].NewTokens.Length, b[0].LogitsPositions));
        Assert.All(runner.Batches.Except(prefill), b => Assert.All(b, row => Assert.Equal(1, row.LogitsPositions)));
    }

    [Fact]
    public async Task No_tokens_asked_ends_the_request_once_its_prompt_is_scored()
    {
        using var runner = new CountingRunner(vocabularySize: Vocabulary);
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions());

        var deltas = await Read(engine.Submit(new GenerationRequest("r", [5, 6, 40], new SamplingParams { Temperature = 0, MaxTokens = 0, Logprobs = true }) { PromptLogprobs = true }));

        var only = Assert.Single(deltas);
        Assert.Empty(only.TokenIds);
        Assert.Equal(FinishReason.Length, only.FinishReason);
        Assert.Equal((3, 0), (only.Usage!.Value.PromptTokens, only.Usage.Value.CompletionTokens));
        var scores = only.PromptLogprobs!;
        Assert.Equal([6, 40], scores.Select(s => s.TokenId));
        Assert.Equal(Likely, scores[0].Logprob, 4); // 6 follows 5
        Assert.Equal(Unlikely, scores[1].Logprob, 4); // 40 does not follow 6
    }

    [Fact]
    public async Task A_scored_prompt_runs_alone_while_plain_prompts_are_prefilled_together()
    {
        using var runner = new CountingRunner(vocabularySize: Vocabulary, contextLength: 64, maxBatchSize: 8);
        runner.Running.Reset(); // hold the first run so that all three wait together
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions());
        var sampling = new SamplingParams { Temperature = 0, MaxTokens = 1, Logprobs = true, IgnoreEos = true };

        var first = engine.Submit(new GenerationRequest("a", [1, 2, 3], sampling));
        await WaitFor(() => engine.QueuedRequests == 0);
        var plain = engine.Submit(new GenerationRequest("c", [20, 21, 22], sampling)); // admitted first, the scored one may not join it
        var scored = engine.Submit(new GenerationRequest("b", [10, 11, 12], sampling) { PromptLogprobs = true });
        runner.Running.Set();
        await Task.WhenAll(Read(first), Read(scored), Read(plain));

        var scoredRuns = runner.Batches.Where(b => b.Any(r => r.NewTokens.Span.SequenceEqual(new[] { 10, 11, 12 }))).ToList();
        Assert.Single(Assert.Single(scoredRuns));
    }

    [Fact]
    public async Task Newcomers_are_admitted_while_a_long_prompt_is_scored_and_scored_prompts_take_turns()
    {
        using var runner = new CountingRunner(vocabularySize: Vocabulary, contextLength: 64, maxBatchSize: 8);
        runner.Running.Reset(); // hold the first run so that all wait together
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions());
        var sampling = new SamplingParams { Temperature = 0, MaxTokens = 1, Logprobs = true, IgnoreEos = true };
        int[] longPrompt = [.. Enumerable.Range(100, 40)];
        int[] otherPrompt = [.. Enumerable.Range(200, 20)];

        var first = engine.Submit(new GenerationRequest("long", longPrompt, sampling) { PromptLogprobs = true });
        await WaitFor(() => engine.QueuedRequests == 0);
        var other = engine.Submit(new GenerationRequest("other", otherPrompt, sampling) { PromptLogprobs = true });
        var plain = engine.Submit(new GenerationRequest("plain", [7, 8, 9], sampling));
        runner.Running.Set();
        await Task.WhenAll(Read(first), Read(other), Read(plain));

        var runs = runner.Batches.Select((batch, index) => (batch, index)).ToList();
        int RunOf(int firstToken, bool last) => (last ? runs.AsEnumerable().Reverse() : runs).First(r => r.batch.Any(row => row.NewTokens.Length > 1 && row.NewTokens.Span[0] >= firstToken && row.NewTokens.Span[0] < firstToken + 40 || row.NewTokens.Span.SequenceEqual(new[] { 7, 8, 9 }) && firstToken == 7)).index;
        // 40 positions in 8-row chunks: five runs. The plain prompt got in after the first, not after the fifth.
        Assert.True(RunOf(7, last: false) < RunOf(100, last: true), "the plain prompt waited for the whole scored prompt");
        // The other scored prompt waited for the first to be done: one scored prompt at a time.
        Assert.True(RunOf(200, last: false) > RunOf(100, last: true), "two prompts were scored at once");
    }

    [Fact]
    public async Task A_scored_newcomer_that_must_wait_its_turn_displaces_no_running_request()
    {
        // Batch of 3, full: tenant a decodes two requests, tenant s's prompt is being scored. Tenant f, with nothing
        // running, sends a scored prompt: it cannot start before s's is done, so sending one of a's back would only
        // make a recompute it, step after step.
        using var runner = new CountingRunner(vocabularySize: Vocabulary, contextLength: 64, maxBatchSize: 3);
        runner.Running.Reset();
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { MaxBatchSize = 3 });
        var decoding = new SamplingParams { Temperature = 0, MaxTokens = 40, IgnoreEos = true };
        var scoring = new SamplingParams { MaxTokens = 0, Logprobs = true };

        var a1 = engine.Submit(new GenerationRequest("a1", [1, 2, 3], decoding) { Tenant = "a" });
        var a2 = engine.Submit(new GenerationRequest("a2", [4, 5, 6], decoding) { Tenant = "a" });
        var s = engine.Submit(new GenerationRequest("s", [.. Enumerable.Range(100, 56)], scoring) { Tenant = "s", PromptLogprobs = true });
        var f = engine.Submit(new GenerationRequest("f", [7, 8, 9, 10, 11], scoring) { Tenant = "f", PromptLogprobs = true });
        runner.Running.Set();
        await Task.WhenAll(Read(a1), Read(a2), Read(s), Read(f));

        Assert.Equal(0, engine.Preemptions);
    }

    [Fact]
    public async Task A_prompt_only_scored_may_fill_the_context_and_one_that_generates_may_not()
    {
        using var runner = new CountingRunner(vocabularySize: Vocabulary, contextLength: 32);
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions());
        int[] full = [.. Enumerable.Range(1, 32)];

        var deltas = await Read(engine.Submit(new GenerationRequest("scored", full, new SamplingParams { MaxTokens = 0 }) { PromptLogprobs = true }));

        Assert.Equal(31, Assert.Single(deltas).PromptLogprobs!.Count);
        Assert.Throws<ArgumentException>(() => engine.Submit(new GenerationRequest("generates", full, new SamplingParams { MaxTokens = 1 })));
    }

    [Fact]
    public void A_runner_that_returns_the_last_position_only_refuses_to_score_a_prompt()
    {
        using var runner = new CountingRunner(vocabularySize: Vocabulary) { LogitsEveryPosition = false };
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions());

        var refused = Assert.Throws<ArgumentException>(() => engine.Submit(new GenerationRequest("r", [1, 2], new SamplingParams { MaxTokens = 1 }) { PromptLogprobs = true }));

        Assert.Contains("cannot score a prompt", refused.Message, StringComparison.Ordinal);
    }

    private static async Task<List<GenerationDelta>> Read(GenerationStream stream)
    {
        var deltas = new List<GenerationDelta>();
        await foreach (var delta in stream)
        {
            deltas.Add(delta);
        }

        return deltas;
    }

    private static async Task WaitFor(Func<bool> condition)
    {
        for (var i = 0; i < 500 && !condition(); i++)
        {
            await Task.Delay(10);
        }

        Assert.True(condition());
    }
}
