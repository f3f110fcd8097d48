using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Tests.Common;

namespace Appliance.Engine.Tests.Scheduling;

/// <summary>
/// A fault in the engine loop outside a model run (slicing the logits, the runner's bookkeeping) ends the requests it
/// held with an engine failure at once, refuses new ones while the engine restarts, counts the restart, and the engine
/// serves again after its backoff. A fault in reading one request's output (detokenising) ends that request alone.
/// </summary>
public sealed class EngineSupervisorTests
{
    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = 6 };
    // Long enough to observe the restart in progress even when a loaded machine pauses the test for a few seconds.
    private static readonly SchedulerOptions Options = new() { RestartBackoff = TimeSpan.FromSeconds(6), MaxRestartBackoff = TimeSpan.FromSeconds(12) };

    public enum Stage
    {
        Sampling,
        Bookkeeping,
    }

    [Theory]
    [InlineData(Stage.Sampling)]
    [InlineData(Stage.Bookkeeping)]
    public async Task A_crash_fails_the_held_requests_and_the_engine_restarts(Stage stage)
    {
        using var runner = new FaultyRunner(new CountingRunner());
        var tokenizer = new FaultyTokenizer();
        using var engine = new GenerationEngine(runner, tokenizer, Options);
        Assert.Equal("BCDEFG", (await engine.Submit(new GenerationRequest("before", [65], Greedy)).CollectAsync()).Text);

        runner.ShortLogits = stage == Stage.Sampling;
        runner.FailRelease = stage == Stage.Bookkeeping;
        runner.Paused.Reset(); // all three are held before the first runs, so none can crash the engine before the others arrive
        var held = Enumerable.Range(0, 3).Select(i => engine.Submit(new GenerationRequest($"held-{i}", [65], Greedy))).ToList();
        runner.Paused.Set();

        foreach (var stream in held)
        {
            var failure = await Assert.ThrowsAsync<EngineFailedException>(() => stream.CollectAsync()).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Contains("failed", failure.Message, StringComparison.Ordinal);
        }

        Assert.False(engine.Healthy);
        Assert.Equal(1, engine.Restarts);
        var refused = Assert.Throws<EngineFailedException>(() => engine.Submit(new GenerationRequest("during", [65], Greedy)));
        Assert.InRange(refused.RetryAfterSeconds, 1, 7);

        (runner.ShortLogits, runner.FailRelease, tokenizer.Fail) = (false, false, false);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!engine.Healthy && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.True(engine.Healthy, "the engine should have restarted");
        Assert.Equal((0, 0), (engine.QueuedRequests, engine.RunningRequests));
        Assert.Equal("BCDEFG", (await engine.Submit(new GenerationRequest("after", [65], Greedy)).CollectAsync()).Text);
    }

    [Fact]
    public async Task A_fault_in_reading_a_requests_output_fails_that_request_without_restarting_the_engine()
    {
        using var runner = new FaultyRunner(new CountingRunner());
        var tokenizer = new FaultyTokenizer { Fail = true };
        using var engine = new GenerationEngine(runner, tokenizer, Options);

        var failure = await Assert.ThrowsAsync<RequestFailedException>(() => engine.Submit(new GenerationRequest("a", [65], Greedy)).CollectAsync());

        Assert.Contains("detokeniser fault", failure.Message, StringComparison.Ordinal);
        Assert.Equal(0, engine.Restarts);
        Assert.True(engine.Healthy);
        // The counts are written after the step that ended it: wait for them rather than race the engine thread.
        Assert.True(SpinWait.SpinUntil(() => (engine.QueuedRequests, engine.RunningRequests) == (0, 0), TimeSpan.FromSeconds(10)));
        tokenizer.Fail = false;
        Assert.Equal("BCDEFG", (await engine.Submit(new GenerationRequest("after", [65], Greedy)).CollectAsync()).Text);
    }

    private sealed class FaultyTokenizer : ITokenizer
    {
        private readonly ByteTokenizer _inner = new();

        public volatile bool Fail;

        public IReadOnlyList<int> Encode(string text) => _inner.Encode(text);

        public string Decode(IEnumerable<int> ids) => Fail ? throw new InvalidOperationException("detokeniser fault") : _inner.Decode(ids);
    }

    /// <summary>Short logits make the engine's per-row slice fail after the run; a failing release breaks its bookkeeping.</summary>
    private sealed class FaultyRunner(CountingRunner inner) : IModelRunner
    {
        public volatile bool ShortLogits;
        public volatile bool FailRelease;

        /// <summary>Runs wait while this is reset.</summary>
        public readonly ManualResetEventSlim Paused = new(true);

        public ModelInfo Info => inner.Info;

        public int MaxBatchSize => inner.MaxBatchSize;

        public ReadOnlyMemory<float> Execute(IReadOnlyList<RunnerSequence> batch)
        {
            Paused.Wait();
            var logits = inner.Execute(batch);
            return ShortLogits ? logits[..1] : logits;
        }

        public void Release(long sequenceId)
        {
            if (FailRelease)
            {
                throw new InvalidOperationException("bookkeeping fault");
            }

            inner.Release(sequenceId);
        }

        public void Dispose()
        {
            Paused.Dispose();
            inner.Dispose();
        }
    }
}
