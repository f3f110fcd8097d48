using System.Diagnostics;
using Appliance.Engine;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Benchmarks;

/// <summary>The runner alone (no engine thread, sampler or streams): greedy decode at batch 1, to show engine overhead.</summary>
internal static class RunnerBench
{
    public static double DecodeRate(string folder, BenchOptions options, Dictionary<string, string>? sessionConfig = null)
    {
        using var runner = new OnnxDecoderRunner(ModelFolder.Open(folder), "raw", new RunnerOptions { MaxBatchSize = 1, SessionConfig = sessionConfig ?? [] });
        var rates = new List<double>();
        for (var r = 0; r <= options.Repeats; r++)
        {
            var prompt = BenchModels.Prompt(r, options.PromptTokens);
            var logits = runner.Execute([new RunnerSequence(r, prompt, 0)]);
            var clock = Stopwatch.StartNew();
            for (var step = 0; step < options.NewTokens - 1; step++)
            {
                var next = ArgMax(logits.Span);
                logits = runner.Execute([new RunnerSequence(r, new[] { next }, prompt.Length + step)]);
            }

            runner.Release(r);
            if (r > 0)
            {
                rates.Add((options.NewTokens - 1) / clock.Elapsed.TotalSeconds); // the first round warms up
            }
        }

        return rates.Average();
    }

    /// <summary>Median seconds of one prefill of a prompt at batch 1 (after a warm-up).</summary>
    public static double PrefillSeconds(string folder, BenchOptions options)
    {
        using var runner = new OnnxDecoderRunner(ModelFolder.Open(folder), "raw", new RunnerOptions { MaxBatchSize = 1 });
        var times = new List<double>();
        for (var r = 0; r <= options.Repeats * 2; r++)
        {
            var clock = Stopwatch.StartNew();
            runner.Execute([new RunnerSequence(r, BenchModels.Prompt(r, options.PromptTokens), 0)]);
            times.Add(clock.Elapsed.TotalSeconds);
            runner.Release(r);
        }

        return times.Skip(1).Order().ElementAt(times.Count / 2);
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }
}
