using System.Globalization;
using System.Text.Json;
using Appliance.Benchmarks;
using Appliance.Tests.Common;

// dotnet run -c Release --project tests/Appliance.Benchmarks -- [--sizes small,base] [--layouts concat,shared]
//   [--prompt-tokens 64] [--new-tokens 128] [--repeats 3] [--models DIR] [--http | --raw | --tokenizers | --audit | --fairness]
// --builder [--sizes base-llama] [--layouts fp32,fp16,int4]: model-builder-style exports, int4 vs float32 and the
// engine against onnxruntime-genai (one stream, eight, eight with mixed output lengths).
// Default: the engine against onnxruntime-genai. --http: the served API under 8 streaming clients against the
// engine's own batch of 8. --raw: the runner alone. --tokenizers: tokenizer load time and throughput. --audit: audit
// records/s of the SQLite store, and served throughput with auditing on vs off. --fairness: a light tenant's time to
// first token alone and under another tenant's flood, and throughput with the pool and quotas on vs the plain host.
// --grammar: structured outputs' mask cost per token at 32k-262k vocabularies, 8 constrained streams vs 8 free.
// --prefix-cache [--sizes small-llama|base-llama]: time to first token with a 2,000-token system prompt seen before vs
// the first time and from another tenant, and 8 streams sharing it with the prefix cache on vs off.
// --audit-verify N: peak memory of a full verification of an N-entry chain.
// --audit-verify-export N: the same from an export file (appliance audit verify --file).
// --scoring [--sizes small-llama|base-llama]: a 1,000-token prompt scored (echo with logprobs) in 16 MiB chunks vs
// 8-position chunks vs plain prefill, and a chat request's time to first token while a prompt is scored.
// --guardrails: the output screen's cost per generated token (detectors, a 10,000-word list, both), and 8 streams with
// every output rule on vs none.
// --speculative [--sizes small-llama|base-llama]: prompt-lookup drafting on vs off at batch 1, and the cost of a run
// that verifies 4 drafts against a one-token step.
var options = BenchOptions.Parse(args);
var culture = CultureInfo.InvariantCulture;
if (args.Contains("--builder"))
{
    // Model-builder-style exports: sizes small-llama or base-llama, "layouts" fp32, fp16, bf16, int4.
    var builderOptions = options with
    {
        Sizes = options.Sizes.Where(s => s.EndsWith("-llama", StringComparison.Ordinal)).DefaultIfEmpty("base-llama").ToArray(),
        Layouts = options.Layouts.Where(l => l is "fp32" or "fp16" or "bf16" or "int4").DefaultIfEmpty("fp32").ToArray(),
    };
    foreach (var size in builderOptions.Sizes)
    {
        if (!args.Contains("--skip-int4"))
        {
            foreach (var row in BuilderBench.Int4Rows(size, builderOptions))
            {
                Console.WriteLine(row);
            }

            Console.WriteLine();
        }

        foreach (var row in await BuilderBench.VersusGenAiRowsAsync(size, builderOptions))
        {
            Console.WriteLine(row);
        }
    }

    return 0;
}

if (args.Contains("--tokenizers"))
{
    foreach (var row in TokenizerBench.Rows(options.Repeats))
    {
        Console.WriteLine(row);
    }

    Console.WriteLine();
    foreach (var row in TokenizerBench.TemplateRows(options.Repeats))
    {
        Console.WriteLine(row);
    }

    return 0;
}

if (args.Contains("--grammar"))
{
    // Structured outputs: mask cost per token by vocabulary size, then 8 constrained streams against 8 free ones.
    foreach (var row in GrammarBench.MaskRows(options.Repeats))
    {
        Console.WriteLine(row);
    }

    Console.WriteLine();
    foreach (var row in await GrammarBench.ThroughputRowsAsync(BenchModels.Ensure(options.ModelsFolder, options.Sizes[0], options.Layouts[0]), options.Repeats))
    {
        Console.WriteLine(row);
    }

    return 0;
}

if (args.Contains("--guardrails"))
{
    // Guardrails: the output screen's cost per token by rule set, then 8 screened streams against 8 unscreened ones.
    foreach (var row in GuardrailBench.ScreenRows(options.Repeats))
    {
        Console.WriteLine(row);
    }

    Console.WriteLine();
    foreach (var row in await GuardrailBench.ThroughputRowsAsync(BenchModels.Ensure(options.ModelsFolder, options.Sizes[0], options.Layouts[0]), options.Repeats))
    {
        Console.WriteLine(row);
    }

    return 0;
}

if (args.Contains("--prefix-cache"))
{
    // Prefix caching: time to first token with a shared 2,000-token system prompt, and 8 streams sharing it.
    var prefixOptions = options with { Sizes = options.Sizes.Where(s => s.EndsWith("-llama", StringComparison.Ordinal)).DefaultIfEmpty("small-llama").ToArray() };
    foreach (var row in await PrefixCacheBench.RowsAsync(prefixOptions))
    {
        Console.WriteLine(row);
    }

    return 0;
}

if (args.Contains("--scoring"))
{
    // Scoring a prompt (echo with logprobs): wide chunks vs narrow ones vs plain prefill, and a chat request beside it.
    var scoringOptions = options with { Sizes = options.Sizes.Where(s => s.EndsWith("-llama", StringComparison.Ordinal)).DefaultIfEmpty("small-llama").ToArray() };
    foreach (var row in await ScoringBench.RowsAsync(scoringOptions))
    {
        Console.WriteLine(row);
    }

    return 0;
}

if (args.Contains("--speculative"))
{
    // Prompt-lookup speculative decoding at batch 1 on a model-builder-style export (shared KV buffer).
    var size = options.Sizes.FirstOrDefault(s => s.EndsWith("-llama", StringComparison.Ordinal)) ?? "small-llama";
    foreach (var row in await SpeculativeBench.RowsAsync(BenchModels.Ensure(options.ModelsFolder, size, "fp32"), options))
    {
        Console.WriteLine(row);
    }

    return 0;
}

if (args.Contains("--fairness"))
{
    foreach (var row in await FairnessBench.RowsAsync(BenchModels.Ensure(options.ModelsFolder, options.Sizes[0], options.Layouts[0]), options))
    {
        Console.WriteLine(row);
    }

    return 0;
}

if (args.Contains("--soak"))
{
    foreach (var row in await SoakBench.RowsAsync(BenchModels.Ensure(options.ModelsFolder, options.Sizes[0], options.Layouts[0]), options))
    {
        Console.WriteLine(row);
    }

    return 0;
}

if (Array.IndexOf(args, "--audit-verify-export") is var exportAt and >= 0)
{
    // --audit-verify-export N: peak memory of verifying an export file of N entries offline.
    var entries = exportAt + 1 < args.Length ? long.Parse(args[exportAt + 1], culture) : 2_000_000;
    foreach (var row in await VerifyBench.ExportRowsAsync(entries, Path.Combine(Path.GetTempPath(), $"appliance-bench-export-{Environment.ProcessId}")))
    {
        Console.WriteLine(row);
    }

    return 0;
}

if (Array.IndexOf(args, "--audit-verify") is var verifyAt and >= 0)
{
    // --audit-verify N: peak memory of verifying a chain of N entries in full.
    var entries = verifyAt + 1 < args.Length ? long.Parse(args[verifyAt + 1], culture) : 2_000_000;
    foreach (var row in VerifyBench.Rows(entries))
    {
        Console.WriteLine(row);
    }

    return 0;
}

if (args.Contains("--audit"))
{
    foreach (var row in await AuditBench.StoreRowsAsync(options.Repeats))
    {
        Console.WriteLine(row);
    }

    Console.WriteLine();
    foreach (var row in await AuditBench.HttpRowsAsync(BenchModels.Ensure(options.ModelsFolder, options.Sizes[0], options.Layouts[0]), options))
    {
        Console.WriteLine(row);
    }

    return 0;
}

if (args.Contains("--http"))
{
    Console.WriteLine("| model | KV layout | engine batch-8 (tok/s) | HTTP 8 streams (tok/s) | HTTP / engine | TTFT p50 (ms) | TTFT p99 (ms) | p99 / p50 |");
    Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|");
    foreach (var size in options.Sizes)
    {
        foreach (var layout in options.Layouts)
        {
            var folder = BenchModels.Ensure(options.ModelsFolder, size, layout);
            var direct = new List<double>();
            var served = new List<HttpRound>();
            using (var engine = new EngineBench(folder, options))
            await using (var host = await HttpLoadBench.StartAsync(folder, options))
            {
                await engine.WarmUpAsync();
                await host.RoundAsync(8);
                for (var round = 0; round < options.Repeats; round++)
                {
                    Console.Error.WriteLine($"{size}/{layout}: HTTP round {round + 1} of {options.Repeats}");
                    direct.Add(await engine.StaticBatchThroughputAsync());
                    served.Add(await host.RoundAsync(8));
                }
            }

            var ttft = served.SelectMany(r => r.TtftSeconds).Order().ToArray();
            var p50 = Percentile(ttft, 0.50);
            var p99 = Percentile(ttft, 0.99);
            Console.WriteLine(string.Format(culture, "| {0} | {1} | {2:F1} | {3:F1} | {4:F2} | {5:F0} | {6:F0} | {7:F2} |",
                size, layout, Median(direct), Median(served.Select(r => r.TokensPerSecond)),
                Median(direct.Zip(served, (d, h) => h.TokensPerSecond / d)), p50 * 1000, p99 * 1000, p99 / p50));
        }
    }

    return 0;
}

if (args.Contains("--raw"))
{
    foreach (var size in options.Sizes)
    {
        foreach (var layout in options.Layouts)
        {
            var folder = BenchModels.Ensure(options.ModelsFolder, size, layout);
            var spin = RunnerBench.DecodeRate(folder, options);
            var noSpin = RunnerBench.DecodeRate(folder, options, new() { ["session.intra_op.allow_spinning"] = "0" });
            var prefill = RunnerBench.PrefillSeconds(folder, options);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{size}/{layout}: runner alone, batch 1: {spin:F1} tok/s (spinning), {noSpin:F1} tok/s (no spinning), prefill of {options.PromptTokens} tokens {prefill * 1000:F0} ms"));
        }
    }

    return 0;
}

var lines = new List<string>
{
    "| model | KV layout | engine | TTFT b1 (ms) | decode b1 (tok/s) | TTFT b8 (ms) | decode b8 (tok/s) | b8 / b1 | staggered (tok/s) | staggered / static b8 |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
};

foreach (var size in options.Sizes)
{
    foreach (var layout in options.Layouts)
    {
        var folder = BenchModels.Ensure(options.ModelsFolder, size, layout);
        using var bench = new EngineBench(folder, options);
        await bench.WarmUpAsync();
        var ours = new List<EngineRound>();
        var genai1 = new List<(double Ttft, double Decode)>();
        var genai8 = new List<(double Ttft, double Decode)>();
        for (var round = 0; round < options.Repeats; round++)
        {
            // Rounds alternate the two engines so that the shared machine's drift hits both alike.
            Console.Error.WriteLine($"{size}/{layout}: round {round + 1} of {options.Repeats}");
            ours.Add(await bench.RoundAsync());
            genai1.Add(GenAi(folder, 1));
            genai8.Add(GenAi(folder, 8));
        }

        var o = new EngineRound(
            Median(ours.Select(r => r.Ttft1)), Median(ours.Select(r => r.Decode1)), Median(ours.Select(r => r.Ttft8)),
            Median(ours.Select(r => r.Decode8)), Median(ours.Select(r => r.Staggered)), Median(ours.Select(r => r.StaticBatchTotal)));
        var g1 = (Ttft: Median(genai1.Select(g => g.Ttft)), Decode: Median(genai1.Select(g => g.Decode)));
        var g8 = (Ttft: Median(genai8.Select(g => g.Ttft)), Decode: Median(genai8.Select(g => g.Decode)));
        var ratio1 = Median(ours.Zip(genai1, (a, b) => a.Decode1 / b.Decode));
        var ratio8 = Median(ours.Zip(genai8, (a, b) => a.Decode8 / b.Decode));
        var scaling = Median(ours.Select(r => r.Decode8 / r.Decode1));
        var churn = Median(ours.Select(r => r.Staggered / r.StaticBatchTotal));

        lines.Add(string.Format(culture, "| {0} | {1} | appliance | {2:F0} | {3:F1} | {4:F0} | {5:F1} | {6:F2} | {7:F1} | {8:F2} |",
            size, layout, o.Ttft1 * 1000, o.Decode1, o.Ttft8 * 1000, o.Decode8, scaling, o.Staggered, churn));
        lines.Add(string.Format(culture, "| {0} | {1} | onnxruntime-genai 0.18.0 | {2:F0} | {3:F1} | {4:F0} | {5:F1} | {6:F2} | | |",
            size, layout, g1.Ttft * 1000, g1.Decode, g8.Ttft * 1000, g8.Decode, Median(genai1.Zip(genai8, (a, b) => b.Decode / a.Decode))));
        lines.Add(string.Format(culture, "| {0} | {1} | ratio appliance / genai (median of rounds) | | {2:F2} | | {3:F2} | | | |",
            size, layout, ratio1, ratio8));
    }
}

Console.WriteLine(string.Join(Environment.NewLine, lines));
return 0;

static double Percentile(double[] sorted, double fraction) =>
    sorted[Math.Clamp((int)Math.Ceiling(fraction * sorted.Length) - 1, 0, sorted.Length - 1)];

static double Median(IEnumerable<double> values)
{
    var sorted = values.Order().ToArray();
    return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
}

(double Ttft, double Decode) GenAi(string folder, int batch)
{
    var output = GenAiReferenceTool.Run(
        TimeSpan.FromMinutes(10), "bench", folder, batch.ToString(culture), options.PromptTokens.ToString(culture),
        options.NewTokens.ToString(culture), "1");
    using var json = JsonDocument.Parse(output);
    return (json.RootElement.GetProperty("ttftSeconds").GetDouble(), json.RootElement.GetProperty("decodeTokensPerSecond").GetDouble());
}
