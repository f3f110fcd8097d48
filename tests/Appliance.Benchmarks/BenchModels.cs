using Appliance.Runtime.Onnx.Synthetic;

namespace Appliance.Benchmarks;

/// <summary>Synthetic benchmark models, written once into a cache folder and reused.</summary>
internal static class BenchModels
{
    /// <summary>
    /// GPT-2 style sizes tiny, small, base with layouts concat or shared; model-builder style sizes small-llama and
    /// base-llama with "layouts" fp32, fp16, bf16 or int4 (the export's precision).
    /// </summary>
    public static string Ensure(string root, string size, string layout)
    {
        var spec = size switch
        {
            "tiny" => SyntheticModelSpec.Tiny,
            "small" => SyntheticModelSpec.Small,
            "base" => SyntheticModelSpec.Base,
            "small-llama" => SyntheticModelSpec.TinyLlama with { HiddenSize = 384, Layers = 4, Heads = 6, KvHeads = 2, ContextLength = 1024 },
            "base-llama" => SyntheticModelSpec.BaseLlama,
            _ => throw new ArgumentException($"unknown size '{size}' (tiny, small, base, small-llama, base-llama)"),
        };
        spec = spec.Architecture == SyntheticArchitecture.Llama
            ? spec with
            {
                ContextLength = Math.Min(spec.ContextLength, 512),
                Precision = layout switch { "fp16" => BoundaryPrecision.Float16, "bf16" => BoundaryPrecision.BFloat16, _ => BoundaryPrecision.Float32 },
                Int4Weights = layout == "int4",
            }
            : spec with
            {
                ContextLength = Math.Min(spec.ContextLength, 512),
                Layout = layout == "shared" ? KvCacheLayout.SharedBuffer : KvCacheLayout.Concatenating,
            };
        var folder = Path.Combine(root, $"{size}-{layout}");
        if (!File.Exists(Path.Combine(folder, "manifest.json")))
        {
            Console.Error.WriteLine($"writing {folder} ({spec.ParameterCount:N0} parameters)");
            SyntheticModelFolder.Write(spec, folder);
        }

        return folder;
    }

    /// <summary>Tokens per second of 8 requests of 32-token prompts submitted together, seeded by round.</summary>
    public static async Task<double> EightStreamsAsync(Appliance.Engine.GenerationEngine engine, Appliance.Engine.Requests.SamplingParams sampling, int round)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(i =>
            engine.Submit(new Appliance.Engine.Requests.GenerationRequest($"{round}-{i}", Prompt(i, 32), sampling with { Seed = (round * 8) + i })).CollectAsync()));
        return results.Sum(r => r.Usage.CompletionTokens) / clock.Elapsed.TotalSeconds;
    }

    /// <summary>The same deterministic prompts the reference tool's bench mode uses.</summary>
    public static int[] Prompt(int index, int length) =>
        [.. Enumerable.Range(0, length).Select(j => ((index * 7919) + (j * 104729) + 13) % 50000)];
}
