using System.Diagnostics;
using System.Globalization;
using Appliance.Api.Guardrails;
using Appliance.Engine;
using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Tokenization;

namespace Appliance.Benchmarks;

/// <summary>
/// Guardrails on answers: what screening costs per generated token (it runs on the engine's loop, once per token of
/// every sequence), by rule set, and engine throughput of 8 screened streams against 8 unscreened ones in one run.
/// </summary>
internal static class GuardrailBench
{
    private static readonly (string Name, GuardrailRuleOptions[] Rules)[] RuleSets =
    [
        ("Email, CreditCard, Iban, Phone (mask)", Detectors()),
        ("10,000 words (block)", [Words()]),
        ("both", [.. Detectors(), Words()]),
    ];

    public static IEnumerable<string> ScreenRows(int repeats)
    {
        var answer = Answer();
        var pieces = Pieces(answer);
        yield return string.Create(CultureInfo.InvariantCulture, $"Answer of {answer.Length:N0} characters in {pieces.Count:N0} pieces of 1 to 7 characters (one per token).");
        yield return string.Empty;
        yield return "| rules | held back (chars) | first answer (µs/token) | later answers (µs/token) |";
        yield return "|---|---:|---:|---:|";
        foreach (var (name, rules) in RuleSets)
        {
            var guard = Guard(rules);
            var first = Screen(guard, pieces);
            var later = Enumerable.Range(0, repeats).Select(_ => Screen(guard, pieces)).Order().ToList()[repeats / 2];
            var compiled = rules.Select(r => GuardrailRule.Compile(r, 0).Rule!).ToList();
            var spanning = compiled.Where(r => r.SpansWhitespace).Select(r => r.MaxLength).DefaultIfEmpty(0).Max();
            var held = spanning > 0 ? $"{spanning}" : "the last word";
            yield return string.Create(CultureInfo.InvariantCulture, $"| {name} | {held} | {first:F1} | {later:F1} |");
        }
    }

    public static async Task<IEnumerable<string>> ThroughputRowsAsync(string folder, int repeats)
    {
        using var engine = new GenerationEngine(
            new OnnxDecoderRunner(ModelFolder.Open(folder), "bench", new RunnerOptions { MaxBatchSize = 8 }),
            Gpt2Tokenizer.Instance,
            new SchedulerOptions { MaxBatchSize = 8 });
        var guard = Guard(RuleSets[^1].Rules);
        var free = new SamplingParams { Temperature = 1f, MaxTokens = 128, IgnoreEos = true };
        var screened = free with { OutputScreen = guard.OutputScreen };
        await BenchModels.EightStreamsAsync(engine, screened, 0); // warm-up: the expressions' states
        var freeRates = new List<double>();
        var screenedRates = new List<double>();
        for (var round = 0; round < repeats; round++)
        {
            freeRates.Add(await BenchModels.EightStreamsAsync(engine, free, round));
            screenedRates.Add(await BenchModels.EightStreamsAsync(engine, screened, round));
        }

        var freeRate = freeRates.Order().ToList()[repeats / 2];
        var screenedRate = screenedRates.Order().ToList()[repeats / 2];
        return
        [
            "| 8 streams, temperature 1, 128 tokens | tokens/s | vs unscreened |",
            "|---|---:|---:|",
            string.Create(CultureInfo.InvariantCulture, $"| no rules | {freeRate:F0} | 1.00 |"),
            string.Create(CultureInfo.InvariantCulture, $"| detectors and 10,000 words | {screenedRate:F0} | {screenedRate / freeRate:F2} |"),
        ];
    }

    private static GuardrailRuleOptions[] Detectors() =>
        [.. new[] { "Email", "CreditCard", "Iban", "Phone" }.Select(d => new GuardrailRuleOptions { Name = d, Detector = d, Action = GuardrailAction.Mask })];

    /// <summary>10,000 distinct made-up words of 4 to 14 letters (none in the answer): the most a rule may hold.</summary>
    private static GuardrailRuleOptions Words()
    {
        var random = new Random(3);
        return new()
        {
            Name = "words",
            Words = [.. Enumerable.Range(0, 10_000).Select(i => new string([.. Enumerable.Range(0, random.Next(4, 15)).Select(_ => (char)('a' + random.Next(26)))]) + "q" + i)],
            Action = GuardrailAction.Block,
        };
    }

    private static RequestGuardrails Guard(GuardrailRuleOptions[] rules) =>
        new("bench", [], [.. rules.Select((r, i) => GuardrailRule.Compile(r, i).Rule!)], new GuardrailTally(), null);

    /// <summary>Prose with an address, a card and a phone number now and then, as an answer that quotes a record would.</summary>
    private static string Answer()
    {
        var random = new Random(7);
        string[] words = ["the", "customer", "asked", "about", "an", "invoice", "from", "March", "which", "was", "paid", "twice", "and", "should", "be", "refunded", "to", "their", "account", "today"];
        var text = new System.Text.StringBuilder();
        for (var i = 0; i < 1600; i++)
        {
            text.Append(i % 97 == 50 ? "ada.lovelace@example.org" : i % 131 == 70 ? "4111 1111 1111 1111" : i % 173 == 90 ? "+44 20 7946 0958" : words[random.Next(words.Length)]);
            text.Append(i % 15 == 14 ? ". " : " ");
        }

        return text.ToString();
    }

    private static List<string> Pieces(string answer)
    {
        var random = new Random(11);
        var pieces = new List<string>();
        for (var at = 0; at < answer.Length;)
        {
            var length = Math.Min(random.Next(1, 8), answer.Length - at);
            pieces.Add(answer.Substring(at, length));
            at += length;
        }

        return pieces;
    }

    private static double Screen(RequestGuardrails guard, List<string> pieces)
    {
        var screen = guard.OutputScreen!();
        var clock = Stopwatch.StartNew();
        foreach (var piece in pieces)
        {
            screen.Push(piece);
        }

        screen.Flush();
        return clock.Elapsed.TotalMicroseconds / pieces.Count;
    }
}
