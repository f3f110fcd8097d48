using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Tests.Common;

namespace Appliance.Engine.Tests.Scheduling;

/// <summary>The engine loop and scheduler over a fake model whose next token is the last token plus one.</summary>
public sealed class GenerationEngineTests
{
    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = 5 };

    [Fact]
    public async Task Generates_until_max_tokens_with_usage()
    {
        using var runner = new CountingRunner();
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions());
        var result = await engine.Submit(new GenerationRequest("r", [65, 66], Greedy)).CollectAsync();

        Assert.Equal([67, 68, 69, 70, 71], result.TokenIds);
        Assert.Equal("CDEFG", result.Text);
        Assert.Equal(FinishReason.Length, result.FinishReason);
        Assert.Equal((2, 5), (result.Usage.PromptTokens, result.Usage.CompletionTokens));
        Assert.True(result.Usage.QueueMilliseconds >= 0);
    }

    [Fact]
    public async Task A_request_waiting_behind_a_full_batch_reports_its_queue_time()
    {
        using var runner = new CountingRunner(contextLength: 4096) { PauseAfterRuns = 1 };
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { MaxBatchSize = 1 });
        var first = engine.Submit(new GenerationRequest("first", [65], Greedy with { MaxTokens = 3 }));
        var second = engine.Submit(new GenerationRequest("second", [66], Greedy with { MaxTokens = 3 }));
        await Task.Delay(200); // the first holds the only batch slot, paused; the second waits
        runner.PauseAfterRuns = null;
        runner.Running.Set();

        var waited = (await second.CollectAsync()).Usage.QueueMilliseconds;
        var ran = (await first.CollectAsync()).Usage.QueueMilliseconds;
        Assert.True(waited >= 150, $"the waiting request reports {waited} ms in the queue");
        Assert.True(ran < waited, $"the first request reports {ran} ms, the second {waited} ms");
    }

    [Fact]
    public async Task Eos_ends_generation_with_stop_unless_ignored()
    {
        using var runner = new CountingRunner();
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions());
        var stopped = await engine.Submit(new GenerationRequest("r", [296], Greedy)).CollectAsync();
        var ignored = await engine.Submit(new GenerationRequest("r", [296], Greedy with { IgnoreEos = true })).CollectAsync();

        Assert.Equal([297, 298, 299], stopped.TokenIds);
        Assert.Equal(FinishReason.Stop, stopped.FinishReason);
        Assert.Equal(5, ignored.TokenIds.Count);
    }

    [Fact]
    public async Task A_family_end_of_turn_token_stops_generation_and_is_not_emitted()
    {
        using var runner = new CountingRunner();
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions(), extraStopTokenIds: [69]);
        var result = await engine.Submit(new GenerationRequest("r", [65, 66], Greedy)).CollectAsync();

        Assert.Equal([67, 68, 69], result.TokenIds);
        Assert.Equal("CD", result.Text); // 69 ('E') ended the turn and is not part of the text
        Assert.Equal(FinishReason.Stop, result.FinishReason);
    }

    [Fact]
    public async Task Prefill_groups_respect_the_token_budget_and_the_batch_limit()
    {
        using var runner = new CountingRunner(maxBatchSize: 4, contextLength: 128);
        runner.Running.Reset();
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { MaxBatchSize = 4, PrefillTokenBudget = 40 });
        var streams = Enumerable.Range(0, 10).Select(i => engine.Submit(new GenerationRequest($"r{i}", [.. Enumerable.Repeat(65, 10 + i)], Greedy))).ToList();
        runner.Running.Set();
        await Task.WhenAll(streams.Select(s => s.CollectAsync()));

        Assert.All(runner.Batches, batch => Assert.True(batch.Length <= 4));
        var prefills = runner.Batches.Where(b => b.Any(r => r.NewTokens.Length > 1)).ToList();
        Assert.All(prefills, batch => Assert.True(batch.Length * batch.Max(r => r.NewTokens.Length) <= 40 || batch.Length == 1));
        Assert.Empty(runner.LiveSequences);
    }

    [Fact]
    public async Task Requests_wait_while_the_kv_cache_is_full()
    {
        using var runner = new CountingRunner();
        // Each request reserves 2 + 5 = 7 tokens; 15 tokens hold two at a time.
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { KvCacheTokens = 15 });
        var results = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => engine.Submit(new GenerationRequest($"r{i}", [65, 66], Greedy)).CollectAsync()));

        Assert.All(results, r => Assert.Equal(5, r.TokenIds.Count));
        Assert.All(runner.Batches, batch => Assert.True(batch.Length <= 2));
    }

    [Fact]
    public void A_full_queue_refuses_new_requests()
    {
        using var runner = new CountingRunner();
        runner.Running.Reset();
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { MaxQueuedRequests = 2, MaxBatchSize = 1 });
        var first = engine.Submit(new GenerationRequest("a", [65], Greedy));
        SpinWait.SpinUntil(() => runner.Batches.Count == 0 && engine.QueuedRequests == 0, TimeSpan.FromSeconds(5));
        engine.Submit(new GenerationRequest("b", [65], Greedy));
        engine.Submit(new GenerationRequest("c", [65], Greedy));

        var refused = Assert.Throws<EngineOverloadedException>(() => engine.Submit(new GenerationRequest("d", [65], Greedy)));
        Assert.Equal(2, refused.QueuedRequests);
        runner.Running.Set();
        first.Dispose();
    }

    [Fact]
    public async Task A_failed_model_run_fails_its_requests_and_the_engine_goes_on()
    {
        using var runner = new CountingRunner { FailNext = new InvalidOperationException("device lost") };
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions());

        var failure = await Assert.ThrowsAsync<ModelRunException>(() => engine.Submit(new GenerationRequest("a", [65], Greedy)).CollectAsync());
        Assert.Contains("device lost", failure.Message, StringComparison.Ordinal);
        Assert.False(failure.ProducedOutput); // it failed in its prefill: a replica router may retry it elsewhere
        Assert.False(engine.Healthy);
        var after = await engine.Submit(new GenerationRequest("b", [65], Greedy)).CollectAsync();
        Assert.Equal(5, after.TokenIds.Count);
        Assert.True(engine.Healthy);
    }

    [Fact]
    public async Task A_request_whose_constraint_fails_ends_alone_and_the_batch_and_the_engine_go_on()
    {
        using var runner = new CountingRunner();
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions());
        var poisoned = engine.Submit(new GenerationRequest("poisoned", [65], Greedy with { Constraint = new FailsOnSecondToken() }));
        var healthy = engine.Submit(new GenerationRequest("healthy", [66], Greedy));

        var failure = await Assert.ThrowsAsync<RequestFailedException>(() => poisoned.CollectAsync());
        var answer = await healthy.CollectAsync();

        Assert.Contains("a bug in this request's grammar", failure.Message, StringComparison.Ordinal);
        Assert.Equal(5, answer.TokenIds.Count);
        Assert.Equal(0, engine.Restarts); // not a crash of the loop: nothing else failed, nothing restarted
        Assert.True(engine.Healthy);
        Assert.Equal(5, (await engine.Submit(new GenerationRequest("after", [67], Greedy)).CollectAsync()).TokenIds.Count);
    }

    /// <summary>A constraint with a bug that shows on the second token.</summary>
    private sealed class FailsOnSecondToken : Appliance.Engine.Sampling.ITokenConstraint
    {
        public Appliance.Engine.Sampling.ITokenConstraintState Start() => new State();

        private sealed class State : Appliance.Engine.Sampling.ITokenConstraintState
        {
            private int _accepted;

            public bool IsComplete => false;

            public int Restrict(Span<float> logits, IReadOnlySet<int> endTokens, int tokensLeft) => logits.Length;

            public void Accept(int token)
            {
                if (++_accepted == 2)
                {
                    throw new InvalidOperationException("a bug in this request's grammar");
                }
            }
        }
    }

    [Fact]
    public async Task A_replica_whose_run_failed_counts_as_healthy_again_after_the_probation_even_if_nothing_was_sent_to_it()
    {
        // A router sends nothing to an unhealthy replica while others accept: without the probation, one transient
        // failure would idle it for good.
        using var runner = new CountingRunner { FailNext = new InvalidOperationException("out of memory, once") };
        // Long enough that a loaded CI machine still sees the demotion before the probation ends (200 ms was not).
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { FailedRunProbation = TimeSpan.FromSeconds(5) });
        await Assert.ThrowsAsync<ModelRunException>(() => engine.Submit(new GenerationRequest("a", [65], Greedy)).CollectAsync());
        Assert.False(engine.Healthy);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!engine.Healthy && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.True(engine.Healthy, "still demoted after its probation");
    }

    [Theory]
    [InlineData(0, "no tokens")]
    [InlineData(64, "context")]
    public void Requests_that_cannot_fit_are_refused_at_submit(int promptLength, string expected)
    {
        using var runner = new CountingRunner();
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions());
        var error = Assert.Throws<ArgumentException>(() => engine.Submit(new GenerationRequest("r", [.. Enumerable.Repeat(65, promptLength)], Greedy)));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Disposing_the_engine_cancels_unfinished_requests()
    {
        // The fake model stops after two runs, so the request cannot finish its 4000 tokens before the engine stops.
        var runner = new CountingRunner(contextLength: 4096) { PauseAfterRuns = 2 };
        var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions());
        var stream = engine.Submit(new GenerationRequest("r", [65], Greedy with { MaxTokens = 4000, IgnoreEos = true }));
        await using var reader = stream.GetAsyncEnumerator();
        Assert.True(await reader.MoveNextAsync());

        var disposing = Task.Run(engine.Dispose);
        await Task.Delay(50);
        runner.Running.Set();
        await disposing;

        GenerationDelta? last = null;
        while (await reader.MoveNextAsync())
        {
            last = reader.Current;
        }

        Assert.Equal(FinishReason.Cancelled, last?.FinishReason);
        runner.Dispose();
    }
}
