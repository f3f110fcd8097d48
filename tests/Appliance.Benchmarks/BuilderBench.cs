using System.Globalization;
using System.Text.Json;
using Appliance.Tests.Common;

namespace Appliance.Benchmarks;

/// <summary>
/// Model-builder-style exports (--builder): int4 against float32 weights single-stream (the runner alone, rounds
/// alternating), and the engine against onnxruntime-genai on the same folders at one stream, eight streams, and eight
/// streams of requests with mixed output lengths (where continuous batching refills a finished row at once).
/// </summary>
internal static class BuilderBench
{
    private static readonly CultureInfo Culture = CultureInfo.InvariantCulture;

    /// <summary>Sixteen requests of 32 to 128 new tokens, in a fixed order.</summary>
    public static IReadOnlyList<int> MixedLengths { get; } = [.. Enumerable.Range(0, 16).Select(i => 32 + ((i * 37) % 97))];

    public static IEnumerable<string> Int4Rows(string size, BenchOptions options)
    {
        var fp32 = BenchModels.Ensure(options.ModelsFolder, size, "fp32");
        var int4 = BenchModels.Ensure(options.ModelsFolder, size, "int4");
        var one = options with { Repeats = 1 };
        yield return $"Weights on disk: float32 {FolderMiB(fp32):F0} MiB, int4 {FolderMiB(int4):F0} MiB";
        yield return string.Empty;
        yield return "| round | float32 decode b1 (tok/s) | int4 decode b1 (tok/s) | int4 / float32 |";
        yield return "|---|---:|---:|---:|";
        var ratios = new List<double>();
        for (var round = 1; round <= options.Repeats; round++)
        {
            Console.Error.WriteLine($"{size}: int4 vs float32, round {round} of {options.Repeats}");
            var a = RunnerBench.DecodeRate(fp32, one);
            var b = RunnerBench.DecodeRate(int4, one);
            ratios.Add(b / a);
            yield return string.Format(Culture, "| {0} | {1:F1} | {2:F1} | {3:F2} |", round, a, b, b / a);
        }

        yield return string.Format(Culture, "| median | | | {0:F2} |", Median(ratios));
    }

    public static async Task<IReadOnlyList<string>> VersusGenAiRowsAsync(string size, BenchOptions options)
    {
        var lines = new List<string>
        {
            "| model | export | engine | decode b1 (tok/s) | decode b8 (tok/s) | 8 streams, mixed lengths (tok/s) |",
            "|---|---|---|---:|---:|---:|",
        };
        foreach (var variant in options.Layouts)
        {
            var folder = BenchModels.Ensure(options.ModelsFolder, size, variant);
            using var bench = new EngineBench(folder, options);
            await bench.WarmUpAsync();
            var ours = new List<(double B1, double B8, double Mixed)>();
            var theirs = new List<(double B1, double B8, double Mixed)>();
            for (var round = 0; round < options.Repeats; round++)
            {
                Console.Error.WriteLine($"{size}/{variant}: round {round + 1} of {options.Repeats}");
                var engine = await bench.RoundAsync();
                ours.Add((engine.Decode1, engine.Decode8, await bench.MixedLengthsAsync(MixedLengths)));
                theirs.Add((GenAiBench(folder, 1, options).Decode, GenAiBench(folder, 8, options).Decode, GenAiMixed(folder, options)));
            }

            lines.Add(string.Format(Culture, "| {0} | {1} | appliance | {2:F1} | {3:F1} | {4:F1} |", size, variant, Median(ours.Select(o => o.B1)), Median(ours.Select(o => o.B8)), Median(ours.Select(o => o.Mixed))));
            lines.Add(string.Format(Culture, "| {0} | {1} | onnxruntime-genai 0.18.0 | {2:F1} | {3:F1} | {4:F1} |", size, variant, Median(theirs.Select(o => o.B1)), Median(theirs.Select(o => o.B8)), Median(theirs.Select(o => o.Mixed))));
            lines.Add(string.Format(Culture, "| {0} | {1} | ratio (median of rounds) | {2:F2} | {3:F2} | {4:F2} |", size, variant,
                Median(ours.Zip(theirs, (o, t) => o.B1 / t.B1)), Median(ours.Zip(theirs, (o, t) => o.B8 / t.B8)), Median(ours.Zip(theirs, (o, t) => o.Mixed / t.Mixed))));
        }

        return lines;
    }

    private static (double Ttft, double Decode) GenAiBench(string folder, int batch, BenchOptions options)
    {
        var output = GenAiReferenceTool.Run(
            TimeSpan.FromMinutes(10), "bench", folder, batch.ToString(Culture), options.PromptTokens.ToString(Culture), options.NewTokens.ToString(Culture), "1");
        using var json = JsonDocument.Parse(output);
        return (json.RootElement.GetProperty("ttftSeconds").GetDouble(), json.RootElement.GetProperty("decodeTokensPerSecond").GetDouble());
    }

    private static double GenAiMixed(string folder, BenchOptions options)
    {
        var output = GenAiReferenceTool.Run(
            TimeSpan.FromMinutes(10), "bench-mixed", folder, options.PromptTokens.ToString(Culture), string.Join(',', MixedLengths.Select(l => l.ToString(Culture))));
        using var json = JsonDocument.Parse(output);
        return json.RootElement.GetProperty("tokensPerSecond").GetDouble();
    }

    private static double FolderMiB(string folder) =>
        Directory.EnumerateFiles(folder).Where(f => f.Contains(".onnx", StringComparison.Ordinal)).Sum(f => new FileInfo(f).Length) / (double)(1 << 20);

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
