using System.Diagnostics;
using System.Globalization;
using Appliance.Engine;
using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Tokenization;

namespace Appliance.Benchmarks;

/// <summary>
/// Scoring a prompt (a legacy completion's echo with logprobs, what evaluation harnesses send), side by side in one run
/// on a model-builder-style export: a long prompt scored in chunks of as many positions as 16 MiB of host logits hold,
/// against the same prompt scored in chunks of <see cref="NarrowRows"/> (a run's rows before this was measured), and
/// against plain prefill of the prompt (what scoring costs over reading it). Then a short chat request's time to first
/// token while a long prompt is being scored, against the same request alone: scoring must not hold newcomers back.
/// </summary>
internal static class ScoringBench
{
    private const int PromptTokens = 1000;
    private const int NarrowRows = 8;
    private const int ChatPromptTokens = 24;

    public static async Task<IEnumerable<string>> RowsAsync(BenchOptions options)
    {
        var size = options.Sizes[0];
        var folder = PrefixCacheBench.EnsureModel(options.ModelsFolder, size);
        using var wide = Engine(folder, rows: null);
        using var narrow = Engine(folder, rows: NarrowRows);
        await ScoreAsync(wide, BenchModels.Prompt(0, 64)); // warm-up
        await ScoreAsync(narrow, BenchModels.Prompt(0, 64));
        var (scoredWide, scoredNarrow, plain, alone, beside) = (new List<double>(), new List<double>(), new List<double>(), new List<double>(), new List<double>());
        for (var round = 1; round <= options.Repeats; round++)
        {
            Console.Error.WriteLine($"scoring: round {round} of {options.Repeats}");
            var prompt = BenchModels.Prompt(round, PromptTokens);
            // Alternate which goes first, so that drift on the shared machine does not favour one side.
            var order = round % 2 == 0 ? new[] { 0, 1, 2 } : [2, 1, 0];
            foreach (var which in order)
            {
                switch (which)
                {
                    case 0: scoredWide.Add(await ScoreAsync(wide, prompt)); break;
                    case 1: scoredNarrow.Add(await ScoreAsync(narrow, prompt)); break;
                    default: plain.Add(await PrefillAsync(wide, prompt)); break;
                }
            }

            var chat = BenchModels.Prompt(500 + round, ChatPromptTokens);
            alone.Add(await PrefillAsync(wide, chat));
            var scoring = ScoreAsync(wide, BenchModels.Prompt(900 + round, PromptTokens));
            await Task.Delay(50); // the scored prompt is under way
            beside.Add(await PrefillAsync(wide, chat));
            await scoring;
        }

        var culture = CultureInfo.InvariantCulture;
        var rows = RunnerOptions.HostLogitsRows(8, 50257, int.MaxValue);
        return
        [
            $"| {size}, {PromptTokens}-token prompt | seconds, median | vs plain prefill |",
            "|---|---:|---:|",
            string.Create(culture, $"| plain prefill (first token only) | {BenchStats.Median(plain):F2} | 1.00 |"),
            string.Create(culture, $"| scored, chunks of {rows} positions (16 MiB of logits) | {BenchStats.Median(scoredWide):F2} | {BenchStats.Median(scoredWide) / BenchStats.Median(plain):F2} |"),
            string.Create(culture, $"| scored, chunks of {NarrowRows} positions | {BenchStats.Median(scoredNarrow):F2} | {BenchStats.Median(scoredNarrow) / BenchStats.Median(plain):F2} |"),
            string.Create(culture, $"| wide chunks vs {NarrowRows}-position chunks | | **{BenchStats.Median(scoredNarrow.Zip(scoredWide, (n, w) => n / w)):F1}x faster** |"),
            string.Empty,
            $"| {ChatPromptTokens}-token chat request | time to first token (ms), median | vs alone |",
            "|---|---:|---:|",
            string.Create(culture, $"| alone | {BenchStats.Median(alone) * 1000:F0} | 1.00 |"),
            string.Create(culture, $"| while a {PromptTokens}-token prompt is scored | {BenchStats.Median(beside) * 1000:F0} | {BenchStats.Median(beside) / BenchStats.Median(alone):F1} |"),
        ];
    }

    /// <summary>An engine without prefix cache; <paramref name="rows"/> caps a run's logits positions through the logits budget.</summary>
    private static GenerationEngine Engine(string folder, int? rows) =>
        new(new OnnxDecoderRunner(ModelFolder.Open(folder), "bench", new RunnerOptions
        {
            MaxBatchSize = 8,
            PrefixCacheTokens = 0,
            LogitsBudgetBytes = rows is { } r ? r * 50257L * sizeof(float) : null,
        }), Gpt2Tokenizer.Instance, new SchedulerOptions { MaxBatchSize = 8 });

    private static async Task<double> ScoreAsync(GenerationEngine engine, int[] prompt)
    {
        var clock = Stopwatch.StartNew();
        using var stream = engine.Submit(new GenerationRequest(Guid.NewGuid().ToString("N"), prompt, new SamplingParams { Temperature = 0, MaxTokens = 0, Logprobs = true, TopLogprobs = 1 }) { PromptLogprobs = true });
        var scores = 0;
        await foreach (var delta in stream)
        {
            scores += delta.PromptLogprobs?.Count ?? 0;
        }

        return scores == prompt.Length - 1 ? clock.Elapsed.TotalSeconds : throw new InvalidOperationException($"{scores} scores for {prompt.Length} tokens");
    }

    /// <summary>Seconds to the first token of a plain request (the prompt's prefill).</summary>
    private static async Task<double> PrefillAsync(GenerationEngine engine, int[] prompt)
    {
        var clock = Stopwatch.StartNew();
        using var stream = engine.Submit(new GenerationRequest(Guid.NewGuid().ToString("N"), prompt, new SamplingParams { Temperature = 0, MaxTokens = 1, IgnoreEos = true }));
        await foreach (var _ in stream)
        {
            return clock.Elapsed.TotalSeconds;
        }

        return double.NaN;
    }
}
