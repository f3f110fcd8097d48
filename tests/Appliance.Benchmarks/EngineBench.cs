using System.Diagnostics;
using Appliance.Engine;
using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Tokenization;

namespace Appliance.Benchmarks;

/// <summary>One round of measurements of our engine on one model folder.</summary>
internal sealed record EngineRound(double Ttft1, double Decode1, double Ttft8, double Decode8, double Staggered, double StaticBatchTotal);

/// <summary>Our engine on one model folder, kept loaded across rounds.</summary>
internal sealed class EngineBench : IDisposable
{
    private readonly GenerationEngine _engine;
    private readonly BenchOptions _options;

    public EngineBench(string folder, BenchOptions options)
    {
        _options = options;
        _engine = new GenerationEngine(
            new OnnxDecoderRunner(ModelFolder.Open(folder), "bench", new RunnerOptions { MaxBatchSize = 8 }),
            Gpt2Tokenizer.Instance,
            new SchedulerOptions { MaxBatchSize = 8 });
    }

    /// <summary>The first runs after creating a session are slow.</summary>
    public Task WarmUpAsync() => Batch(_engine, _options, 8, 8);

    public async Task<EngineRound> RoundAsync()
    {
        // onnxruntime-genai measures right after its own warm-up; warm ours too after the idle wait between rounds.
        await Batch(_engine, _options, 1, 4);
        var single = await Batch(_engine, _options, 1, _options.NewTokens);
        var batch = await Batch(_engine, _options, 8, _options.NewTokens);
        var staggered = await Staggered(_engine, _options, 8.0 / batch.Decode);
        return new EngineRound(single.Ttft, single.Decode, batch.Ttft, batch.Decode, staggered, batch.Total);
    }

    /// <summary>
    /// Requests of the given output lengths served by eight clients, each taking the next request as soon as its
    /// previous one ends (continuous batching refills the freed row at once). Useful tokens per second of wall time,
    /// prefill included.
    /// </summary>
    public async Task<double> MixedLengthsAsync(IReadOnlyList<int> lengths)
    {
        var next = -1;
        var clock = Stopwatch.StartNew();
        var clients = Enumerable.Range(0, 8).Select(async _ =>
        {
            var tokens = 0;
            for (var i = Interlocked.Increment(ref next); i < lengths.Count; i = Interlocked.Increment(ref next))
            {
                tokens += (await Timed(_engine, BenchModels.Prompt(200 + i, _options.PromptTokens), lengths[i], clock)).Times.Count;
            }

            return tokens;
        }).ToList();
        var total = (await Task.WhenAll(clients)).Sum();
        return total / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Only the static batch of eight: whole-request throughput (prefill included), as the HTTP load measures it.</summary>
    public async Task<double> StaticBatchThroughputAsync() => (await Batch(_engine, _options, 8, _options.NewTokens)).Total;

    public void Dispose() => _engine.Dispose();

    /// <summary>
    /// Submits <paramref name="size"/> requests at once. Decode rate: tokens after each request's first, over the time
    /// from the last first token to the end; total: every generated token over the whole wall time.
    /// </summary>
    private static async Task<(double Ttft, double Decode, double Total)> Batch(GenerationEngine engine, BenchOptions options, int size, int newTokens)
    {
        var clock = Stopwatch.StartNew();
        var runs = Enumerable.Range(0, size).Select(i => Timed(engine, BenchModels.Prompt(i, options.PromptTokens), newTokens, clock)).ToList();
        var results = await Task.WhenAll(runs);
        var allFirst = results.Max(r => r.First);
        var end = results.Max(r => r.Last);
        var tokens = results.Sum(r => r.Times.Count);
        return (results.Average(r => r.First), size * (newTokens - 1) / (end - allFirst), tokens / end);
    }

    /// <summary>
    /// Eight clients arrive a few decode steps apart; each runs two requests back to back with different lengths, so
    /// requests keep joining and leaving the batch. Throughput counts tokens while all eight clients are active.
    /// </summary>
    private static async Task<double> Staggered(GenerationEngine engine, BenchOptions options, double stepSeconds)
    {
        var clock = Stopwatch.StartNew();
        var clients = Enumerable.Range(0, 8).Select(async client =>
        {
            await Task.Delay(TimeSpan.FromSeconds(client * 4 * stepSeconds));
            var start = clock.Elapsed.TotalSeconds;
            var times = new List<double>();
            for (var request = 0; request < 2; request++)
            {
                var length = (options.NewTokens / 2) + (((client + request) % 8) * options.NewTokens / 8);
                var run = await Timed(engine, BenchModels.Prompt(100 + (client * 2) + request, options.PromptTokens), length, clock);
                times.AddRange(run.Times);
            }

            return (Start: start, End: clock.Elapsed.TotalSeconds, Times: times);
        }).ToList();
        var done = await Task.WhenAll(clients);
        var windowStart = done.Max(c => c.Start);
        var windowEnd = done.Min(c => c.End);
        var tokens = done.Sum(c => c.Times.Count(t => t >= windowStart && t <= windowEnd));
        return tokens / (windowEnd - windowStart);
    }

    private static async Task<(double First, double Last, List<double> Times)> Timed(GenerationEngine engine, int[] prompt, int newTokens, Stopwatch clock)
    {
        var submitted = clock.Elapsed.TotalSeconds;
        var times = new List<double>();
        var sampling = new SamplingParams { Temperature = 0, MaxTokens = newTokens, IgnoreEos = true };
        await using var stream = engine.Submit(new GenerationRequest(Guid.NewGuid().ToString("N"), prompt, sampling));
        await foreach (var delta in stream)
        {
            for (var i = 0; i < delta.TokenIds.Count; i++)
            {
                times.Add(clock.Elapsed.TotalSeconds);
            }
        }

        return (times[0] - submitted, times[^1], times);
    }
}
