using System.Diagnostics;
using System.Globalization;
using Appliance.Engine;
using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Benchmarks;

/// <summary>
/// Prompt-lookup speculative decoding at batch 1, side by side in one run on a model-builder-style export: served
/// decode tokens/s with drafting on and off on open-ended text (a random model rarely repeats itself, so this is the
/// cost of drafts that are rejected), and what verifying k drafted tokens in one run costs against one plain step,
/// from which the gain on copy-heavy text follows (no pretrained model that copies can be downloaded here).
/// </summary>
internal static class SpeculativeBench
{
    private const int Drafts = 4;

    public static async Task<IEnumerable<string>> RowsAsync(string folder, BenchOptions options)
    {
        using var on = Engine(folder, Drafts);
        using var off = Engine(folder, 0);
        await DecodeRateAsync(on, 0, 8);
        await DecodeRateAsync(off, 0, 8);
        var withDrafts = new List<double>();
        var without = new List<double>();
        for (var round = 1; round <= options.Repeats; round++)
        {
            Console.Error.WriteLine($"speculative: round {round} of {options.Repeats}");
            var (first, second) = round % 2 == 0 ? (on, off) : (off, on);
            var a = await DecodeRateAsync(first, round, options.NewTokens, options.PromptTokens);
            var b = await DecodeRateAsync(second, round, options.NewTokens, options.PromptTokens);
            withDrafts.Add(first == on ? a : b);
            without.Add(first == on ? b : a);
        }

        var (drafted, accepted) = on.SpeculationCounters;

        // Copy-heavy text stood in for by drafts known to be right (what plain decoding produced), all of them or
        // every second one: the engine's whole path (verify, keep, roll back) at a chosen acceptance.
        var copied = new List<double>();
        var half = new List<double>();
        var plainCopy = new List<double>();
        for (var round = 1; round <= options.Repeats; round++)
        {
            var prompt = BenchModels.Prompt(500 + 700 + round, options.PromptTokens); // the prompt DecodeRateAsync sends for seed 700 + round
            var expected = await ContinuationAsync(off, prompt, options.NewTokens);
            using var all = Engine(folder, Drafts, new KnownContinuationDrafter(prompt.Length, expected, wrongEvery: 0));
            using var some = Engine(folder, Drafts, new KnownContinuationDrafter(prompt.Length, expected, wrongEvery: 2));
            await DecodeRateAsync(all, 0, 8);
            await DecodeRateAsync(some, 0, 8);
            plainCopy.Add(await DecodeRateAsync(off, 700 + round, options.NewTokens, options.PromptTokens));
            copied.Add(await DecodeRateAsync(all, 700 + round, options.NewTokens, options.PromptTokens));
            half.Add(await DecodeRateAsync(some, 700 + round, options.NewTokens, options.PromptTokens));
            Console.Error.WriteLine($"speculative: drafts right {all.SpeculationCounters}, every second wrong {some.SpeculationCounters}");
        }

        var (plainStep, verifyStep) = StepCosts(folder, options);
        var ratio = verifyStep / plainStep;
        var culture = CultureInfo.InvariantCulture;
        string Gain(double keep)
        {
            // Drafts kept one after another with probability `keep` each: tokens one verifying run yields.
            var tokens = Enumerable.Range(0, Drafts + 1).Sum(i => Math.Pow(keep, i));
            return string.Create(culture, $"{tokens:F2} tokens per run, {tokens / ratio:F2}x");
        }

        return
        [
            $"| batch 1, {options.PromptTokens}-token prompts, {options.NewTokens} new tokens, up to {Drafts} drafts | decode tokens/s, median | on / off |",
            "|---|---:|---:|",
            string.Create(culture, $"| open-ended text, drafting off | {BenchStats.Median(without):F1} | 1.00 |"),
            string.Create(culture, $"| open-ended text, drafting on ({accepted} of {drafted} drafted tokens kept) | {BenchStats.Median(withDrafts):F1} | {BenchStats.Median(withDrafts.Zip(without, (w, o) => w / o)):F3} (target at least 0.95) |"),
            string.Empty,
            "| one decoding run at batch 1 (runner alone) | ms, median | vs one token |",
            "|---|---:|---:|",
            string.Create(culture, $"| one token | {plainStep * 1000:F2} | 1.00 |"),
            string.Create(culture, $"| the last token and {Drafts} drafts, logits for all 5 | {verifyStep * 1000:F2} | {ratio:F2} |"),
            string.Empty,
            "| drafts known to be right (copy-heavy text stood in for), same prompts | decode tokens/s, median | vs drafting off |",
            "|---|---:|---:|",
            string.Create(culture, $"| drafting off | {BenchStats.Median(plainCopy):F1} | 1.00 |"),
            string.Create(culture, $"| every draft right | {BenchStats.Median(copied):F1} | {BenchStats.Median(copied.Zip(plainCopy, (c, p) => c / p)):F2} (target at least 1.5) |"),
            string.Create(culture, $"| every second draft wrong | {BenchStats.Median(half):F1} | {BenchStats.Median(half.Zip(plainCopy, (c, p) => c / p)):F2} |"),
            string.Empty,
            "| what the run costs above predict | tokens per run, decode speed-up |",
            "|---|---:|",
            $"| every draft kept | {Gain(1.0)} |",
            $"| each draft kept with probability 0.5 | {Gain(0.5)} |",
        ];
    }

    private static GenerationEngine Engine(string folder, int drafts, Appliance.Engine.Speculation.IDraftProposer? drafter = null) =>
        new(new OnnxDecoderRunner(ModelFolder.Open(folder), "bench", new RunnerOptions { MaxBatchSize = 8 }),
            Gpt2Tokenizer.Instance, new SchedulerOptions { MaxBatchSize = 8, SpeculativeTokens = drafts, DraftProposer = drafter });

    private static async Task<int[]> ContinuationAsync(GenerationEngine engine, int[] prompt, int newTokens)
    {
        var sampling = new SamplingParams { Temperature = 0, MaxTokens = newTokens, IgnoreEos = true };
        var result = await engine.Submit(new GenerationRequest(Guid.NewGuid().ToString("N"), prompt, sampling)).CollectAsync();
        return [.. result.TokenIds];
    }


    /// <summary>Tokens after the first over the time after the first, for one request alone.</summary>
    private static async Task<double> DecodeRateAsync(GenerationEngine engine, int seed, int newTokens, int promptTokens = 64)
    {
        var sampling = new SamplingParams { Temperature = 0, MaxTokens = newTokens, IgnoreEos = true };
        var clock = Stopwatch.StartNew();
        double? first = null;
        var tokens = 0;
        await using var stream = engine.Submit(new GenerationRequest(Guid.NewGuid().ToString("N"), BenchModels.Prompt(500 + seed, promptTokens), sampling));
        await foreach (var delta in stream)
        {
            first ??= clock.Elapsed.TotalSeconds;
            tokens += delta.TokenIds.Count;
        }

        return (tokens - 1) / (clock.Elapsed.TotalSeconds - first!.Value);
    }

    /// <summary>Median seconds of a one-token decoding run and of a five-token verifying run (rolled back), at the same length.</summary>
    private static (double Plain, double Verify) StepCosts(string folder, BenchOptions options)
    {
        using var runner = new OnnxDecoderRunner(ModelFolder.Open(folder), "raw", new RunnerOptions { MaxBatchSize = 8 });
        var prompt = BenchModels.Prompt(900, options.PromptTokens);
        runner.Execute([new RunnerSequence(1, prompt, 0)]);
        var plain = new List<double>();
        var verify = new List<double>();
        int[] drafts = [11, 12, 13, 14, 15];
        for (var i = 0; i < 40; i++)
        {
            var clock = Stopwatch.StartNew();
            runner.Execute([new RunnerSequence(1, new[] { 10 }, prompt.Length)]);
            plain.Add(clock.Elapsed.TotalSeconds);
            runner.Rollback(1, prompt.Length);
            clock.Restart();
            runner.Execute([new RunnerSequence(1, drafts, prompt.Length) { LogitsPositions = drafts.Length }]);
            verify.Add(clock.Elapsed.TotalSeconds);
            runner.Rollback(1, prompt.Length);
        }

        return (BenchStats.Median(plain.Skip(5)), BenchStats.Median(verify.Skip(5)));
    }
}
