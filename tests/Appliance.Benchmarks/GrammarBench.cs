using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Appliance.Engine;
using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Grammar;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Tokenization;

namespace Appliance.Benchmarks;

/// <summary>
/// Structured outputs: the cost of the schema's token mask per generated token at 32k, 128k and 262k vocabularies
/// (first visit of each state, when its table is computed, and later visits), and engine throughput of 8 constrained
/// streams against 8 free ones on the same model in the same run.
/// </summary>
internal static class GrammarBench
{
    public const string Schema = """{"type":"object","properties":{"customer":{"type":"string"},"email":{"type":"string","format":"email"},"lines":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string"},"qty":{"type":"integer"},"unit":{"enum":["kg","piece","litre"]}},"required":["sku","qty","unit"],"additionalProperties":false}},"paid":{"type":["boolean","null"]},"note":{"type":"string"}},"required":["customer","email","lines","paid","note"],"additionalProperties":false}""";

    public static IEnumerable<string> MaskRows(int repeats)
    {
        yield return "| vocabulary | states built | table memory (MB) | mask, first run (µs/token) | mask, later runs (µs/token) | mask, states all cached (µs/token) | free sampling pass (µs/token) | cached / free pass |";
        yield return "|---:|---:|---:|---:|---:|---:|---:|---:|";
        var gpt2 = Enumerable.Range(0, 50257).Select(Gpt2Tokenizer.Instance.TokenBytes).OfType<byte[]>().ToArray();
        foreach (var size in new[] { 32_000, 128_000, 262_144 })
        {
            var tokenizer = new BytesTokenizer(Vocabulary(gpt2, size));
            using var schema = JsonDocument.Parse(Schema);
            var grammar = StructuredOutputs.For(tokenizer, size).JsonSchema(schema.RootElement, strict: true);
            var first = Run(grammar, size, seed: 0);
            var later = Enumerable.Range(1, repeats).Select(seed => Run(grammar, size, seed)).Order().ToList()[repeats / 2];
            var cached = Enumerable.Range(0, repeats).Select(_ => Run(grammar, size, seed: 0)).Order().ToList()[repeats / 2];
            var free = FreePass(size);
            var (built, tableBytes) = grammar is ConstrainedGrammar constrained ? (constrained.States, constrained.TableBytes) : (0, 0L);
            yield return string.Create(CultureInfo.InvariantCulture,
                $"| {size:N0} | {built} | {tableBytes / 1e6:F1} | {first:F1} | {later:F1} | {cached:F1} | {free:F1} | {cached / free:F2} |");
        }
    }

    public static async Task<IEnumerable<string>> ThroughputRowsAsync(string folder, int repeats)
    {
        using var engine = new GenerationEngine(
            new OnnxDecoderRunner(ModelFolder.Open(folder), "bench", new RunnerOptions { MaxBatchSize = 8 }),
            Gpt2Tokenizer.Instance,
            new SchedulerOptions { MaxBatchSize = 8 });
        using var schema = JsonDocument.Parse(Schema);
        var constraint = StructuredOutputs.For(Gpt2Tokenizer.Instance, engine.Model.VocabularySize).JsonSchema(schema.RootElement, strict: true);
        var free = new SamplingParams { Temperature = 1f, MaxTokens = 128, IgnoreEos = true };
        var constrained = new SamplingParams { Temperature = 1f, MaxTokens = 128, Constraint = constraint };
        await BenchModels.EightStreamsAsync(engine, constrained, 0); // warm-up: tables of the states the outputs visit
        var freeRates = new List<double>();
        var constrainedRates = new List<double>();
        for (var round = 0; round < repeats; round++)
        {
            freeRates.Add(await BenchModels.EightStreamsAsync(engine, free, round));
            constrainedRates.Add(await BenchModels.EightStreamsAsync(engine, constrained, round));
        }

        var freeRate = freeRates.Order().ToList()[repeats / 2];
        var constrainedRate = constrainedRates.Order().ToList()[repeats / 2];
        return
        [
            "| 8 streams, temperature 1, up to 128 tokens | tokens/s | vs free |",
            "|---|---:|---:|",
            string.Create(CultureInfo.InvariantCulture, $"| free text | {freeRate:F0} | 1.00 |"),
            string.Create(CultureInfo.InvariantCulture, $"| strict JSON schema | {constrainedRate:F0} | {constrainedRate / freeRate:F2} |"),
        ];
    }

    /// <summary>GPT-2's tokens, then pairs of them joined, up to <paramref name="size"/>; the last id is the end token.</summary>
    private static byte[]?[] Vocabulary(byte[][] gpt2, int size)
    {
        var random = new Random(size);
        var tokens = new byte[]?[size];
        for (var id = 0; id < size - 1; id++)
        {
            tokens[id] = id < gpt2.Length ? gpt2[id] : [.. gpt2[random.Next(256, gpt2.Length)], .. gpt2[random.Next(256, gpt2.Length)]];
        }

        return tokens;
    }

    /// <summary>Microseconds of Restrict and Accept per token over one sampled output (Gumbel-max: sampling at temperature 1).</summary>
    private static double Run(Appliance.Engine.Sampling.ITokenConstraint grammar, int size, int seed)
    {
        var random = new Random(seed);
        var state = grammar.Start();
        var end = new HashSet<int> { size - 1 };
        var logits = new float[size];
        var elapsed = TimeSpan.Zero;
        var tokens = 0;
        for (var step = 0; step < 200; step++)
        {
            for (var i = 0; i < size; i++)
            {
                logits[i] = (float)(random.NextDouble() * 4) - MathF.Log(-MathF.Log((float)random.NextDouble() + 1e-9f));
            }

            var started = Stopwatch.GetTimestamp();
            state.Restrict(logits, end, 199 - step);
            var token = ArgMax(logits);
            state.Accept(token);
            elapsed += Stopwatch.GetElapsedTime(started);
            tokens++;
            if (token == size - 1)
            {
                break;
            }
        }

        return elapsed.TotalMicroseconds / tokens;
    }

    /// <summary>The cost of one pass over the logits that free sampling makes anyway (an argmax), for scale.</summary>
    private static double FreePass(int size)
    {
        var logits = new float[size];
        for (var i = 0; i < size; i++)
        {
            logits[i] = i % 977;
        }

        var clock = Stopwatch.StartNew();
        var sink = 0;
        for (var i = 0; i < 200; i++)
        {
            sink += ArgMax(logits);
        }

        GC.KeepAlive(sink);
        return clock.Elapsed.TotalMicroseconds / 200;
    }

    private static int ArgMax(float[] values)
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

    /// <summary>A vocabulary given as bytes (the benchmark's larger vocabularies have no tokenizer of their own).</summary>
    private sealed class BytesTokenizer(byte[]?[] tokens) : ITokenizer
    {
        public IReadOnlyList<int> Encode(string text) => throw new NotSupportedException();

        public string Decode(IEnumerable<int> ids) => throw new NotSupportedException();

        public byte[]? TokenBytes(int id) => tokens[id];
    }
}
