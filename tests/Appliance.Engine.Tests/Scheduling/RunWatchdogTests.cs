using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Tests.Common;
using Microsoft.Extensions.Logging;

namespace Appliance.Engine.Tests.Scheduling;

/// <summary>
/// A model run that never returns (a hung device or driver) must not hold the engine for good: the watchdog interrupts
/// a run longer than the run timeout and its requests fail, stopping interrupts the run in progress and cancels its
/// requests, and a run that ignores the interrupt makes stopping give up (so the caller keeps the runner alive).
/// </summary>
public sealed class RunWatchdogTests
{
    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = 6 };

    [Fact]
    public async Task A_run_longer_than_the_run_timeout_is_interrupted_and_its_request_fails()
    {
        using var runner = new HangingRunner(new CountingRunner()) { HangNext = true };
        var logger = new EngineLogger();
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { RunTimeout = TimeSpan.FromMilliseconds(300) }, logger);

        var failure = await Assert.ThrowsAsync<ModelRunException>(() => engine.Submit(new GenerationRequest("hung", [65], Greedy)).CollectAsync()).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Contains("run timeout of 0.3 s", failure.Message, StringComparison.Ordinal);
        Assert.True(runner.Interrupts >= 1);
        Assert.False(engine.Healthy); // ranked last for its probation
        Assert.Contains(logger.Entries, e => e.EventId.Id == 1009);
        Assert.Equal("BCDEFG", (await engine.Submit(new GenerationRequest("after", [65], Greedy)).CollectAsync()).Text);
    }

    [Fact]
    public async Task While_a_run_is_overdue_new_requests_are_refused_so_that_the_router_sends_them_elsewhere()
    {
        var runner = new HangingRunner(new CountingRunner()) { HangNext = true, IgnoreInterrupts = true }; // a device wait no interrupt reaches
        var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { RunTimeout = TimeSpan.FromMilliseconds(300) });
        var stuck = engine.Submit(new GenerationRequest("stuck", [65], Greedy));
        Assert.True(runner.Entered.Wait(TimeSpan.FromSeconds(20)), "the run should have started");
        Assert.True(SpinWait.SpinUntil(() => !engine.Healthy, TimeSpan.FromSeconds(20)));

        var refused = Assert.Throws<EngineFailedException>(() => engine.Submit(new GenerationRequest("next", [65], Greedy)));

        Assert.Contains("run timeout", refused.Message, StringComparison.Ordinal);
        runner.Release.Set(); // the device answers at last, with the error an interrupted run gives
        await Assert.ThrowsAsync<ModelRunException>(() => stuck.CollectAsync()).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(SpinWait.SpinUntil(engine.Stop, TimeSpan.FromSeconds(20)));
        runner.Dispose();
    }

    [Fact]
    public async Task Stopping_interrupts_the_run_in_progress_and_cancels_its_request()
    {
        var runner = new HangingRunner(new CountingRunner()) { HangNext = true };
        var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { RunTimeout = TimeSpan.FromMinutes(10) });
        var stream = engine.Submit(new GenerationRequest("hung", [65], Greedy));
        Assert.True(runner.Entered.Wait(TimeSpan.FromSeconds(20)), "the run should have started");
        Assert.True(engine.Healthy); // hanging, but not yet past the timeout

        var stopping = System.Diagnostics.Stopwatch.StartNew();
        Assert.True(engine.Stop());

        Assert.InRange(stopping.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(5)); // not the ten minutes of the run timeout
        var result = await stream.CollectAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(FinishReason.Cancelled, result.FinishReason);
        runner.Dispose();
    }

    [Fact]
    public void Stopping_gives_up_on_a_run_that_ignores_the_interrupt()
    {
        var runner = new HangingRunner(new CountingRunner()) { HangNext = true, IgnoreInterrupts = true };
        var logger = new EngineLogger();
        var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { StopTimeout = TimeSpan.FromMilliseconds(300) }, logger);
        _ = engine.Submit(new GenerationRequest("stuck", [65], Greedy));
        Assert.True(runner.Entered.Wait(TimeSpan.FromSeconds(20)), "the run should have started");

        Assert.False(engine.Stop());

        Assert.Contains(logger.Entries, e => e.EventId.Id == 1010 && e.Level == LogLevel.Critical);
        Assert.True(runner.Interrupts >= 1);
        runner.Release.Set(); // the kernel returns at last: the thread ends and the engine stops
        Assert.True(SpinWait.SpinUntil(engine.Stop, TimeSpan.FromSeconds(20)));
        runner.Dispose();
    }

    /// <summary>Its next run blocks until interrupted (then throws as ONNX Runtime does), or until released.</summary>
    private sealed class HangingRunner(CountingRunner inner) : IModelRunner
    {
        private int _interrupts;

        public volatile bool HangNext;
        public volatile bool IgnoreInterrupts;

        public ManualResetEventSlim Entered { get; } = new();

        public ManualResetEventSlim Release { get; } = new();

        public int Interrupts => Volatile.Read(ref _interrupts);

        public ModelInfo Info => inner.Info;

        public int MaxBatchSize => inner.MaxBatchSize;

        public ReadOnlyMemory<float> Execute(IReadOnlyList<RunnerSequence> batch)
        {
            if (HangNext)
            {
                HangNext = false;
                Entered.Set();
                Release.Wait();
                Release.Reset();
                throw new InvalidOperationException("Exiting due to terminate flag being set to true.");
            }

            return inner.Execute(batch);
        }

        public void Interrupt()
        {
            Interlocked.Increment(ref _interrupts);
            if (!IgnoreInterrupts)
            {
                Release.Set();
            }
        }

        void IModelRunner.Release(long sequenceId) => inner.Release(sequenceId);

        public void Dispose()
        {
            Entered.Dispose();
            Release.Dispose();
            inner.Dispose();
        }
    }

    private sealed class EngineLogger : ILogger<GenerationEngine>
    {
        private readonly ListLogger _inner = new();

        public IReadOnlyList<(LogLevel Level, EventId EventId, string Message)> Entries => _inner.Entries;

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _inner.Log(logLevel, eventId, state, exception, formatter);
    }
}
