using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.OnnxRuntimeGenAI;

// Usage:
//   generate <model-folder> <prompts.json> <new-tokens>   -> JSON: generated token ids per prompt, all prompts in one batch
//   bench <model-folder> <batch> <prompt-tokens> <new-tokens> <repeats> -> JSON: time to first token and decode tokens/s
//   bench-mixed <model-folder> <prompt-tokens> <lengths,comma,separated> -> JSON: useful tokens/s when the requests
//     run in static batches of 8 (each batch until its longest request ends: onnxruntime-genai's Generator has no
//     way to let a finished row go and another join)
// Prompts are token ids; onnxruntime-genai's tokenizer is only used to create its Sequences object.
return args switch
{
    ["generate", var folder, var promptsFile, var newTokens] => Generate(folder, promptsFile, int.Parse(newTokens, System.Globalization.CultureInfo.InvariantCulture)),
    ["bench", var folder, var batch, var promptTokens, var newTokens, var repeats] => Bench(folder, Int(batch), Int(promptTokens), Int(newTokens), Int(repeats)),
    ["bench-mixed", var folder, var promptTokens, var lengths] => BenchMixed(folder, Int(promptTokens), [.. lengths.Split(',').Select(Int)]),
    _ => Usage(),
};

static int Int(string value) => int.Parse(value, System.Globalization.CultureInfo.InvariantCulture);

static int Usage()
{
    Console.Error.WriteLine("usage: generate <model> <prompts.json> <new-tokens> | bench <model> <batch> <prompt-tokens> <new-tokens> <repeats>");
    return 2;
}

static int Generate(string folder, string promptsFile, int newTokens)
{
    var prompts = JsonSerializer.Deserialize<int[][]>(File.ReadAllText(promptsFile)) ?? throw new InvalidDataException("no prompts");
    using var session = new GenAiSession(folder);
    var generated = session.Run(prompts, newTokens, onFirstToken: null);
    Console.WriteLine(JsonSerializer.Serialize(generated));
    return 0;
}

static int Bench(string folder, int batch, int promptTokens, int newTokens, int repeats)
{
    using var session = new GenAiSession(folder);
    var prompts = Enumerable.Range(0, batch).Select(b => Enumerable.Range(0, promptTokens).Select(j => ((b * 7919) + (j * 104729) + 13) % 50000).ToArray()).ToArray();
    session.Run(prompts, Math.Min(newTokens, 8), onFirstToken: null); // warm-up: the first runs after session creation are slow
    var ttft = new List<double>();
    var decodeRates = new List<double>();
    for (var r = 0; r < repeats; r++)
    {
        var clock = Stopwatch.StartNew();
        double first = 0;
        session.Run(prompts, newTokens, onFirstToken: () => first = clock.Elapsed.TotalSeconds);
        var total = clock.Elapsed.TotalSeconds;
        ttft.Add(first);
        decodeRates.Add(batch * (newTokens - 1) / (total - first));
    }

    Console.WriteLine(JsonSerializer.Serialize(new { engine = "onnxruntime-genai 0.18.0", batch, promptTokens, newTokens, ttftSeconds = ttft.Average(), decodeTokensPerSecond = decodeRates.Average() }));
    return 0;
}

static int BenchMixed(string folder, int promptTokens, int[] lengths)
{
    using var session = new GenAiSession(folder);
    int[] Prompt(int index) => [.. Enumerable.Range(0, promptTokens).Select(j => ((index * 7919) + (j * 104729) + 13) % 50000)];
    session.Run([.. Enumerable.Range(0, 8).Select(Prompt)], 8, onFirstToken: null); // warm-up
    var clock = Stopwatch.StartNew();
    var useful = 0;
    for (var first = 0; first < lengths.Length; first += 8)
    {
        var members = Enumerable.Range(first, Math.Min(8, lengths.Length - first)).ToArray();
        session.Run([.. members.Select(i => Prompt(200 + i))], members.Max(i => lengths[i]), onFirstToken: null);
        useful += members.Sum(i => lengths[i]);
    }

    Console.WriteLine(JsonSerializer.Serialize(new { engine = "onnxruntime-genai 0.18.0", tokensPerSecond = useful / clock.Elapsed.TotalSeconds }));
    return 0;
}

/// <summary>One onnxruntime-genai model on the CPU with greedy search.</summary>
internal sealed class GenAiSession : IDisposable
{
    private readonly Config _config;
    private readonly Model _model;
    private readonly Tokenizer _tokenizer;

    public GenAiSession(string folder)
    {
        _config = new Config(folder);
        _config.ClearProviders();
        _model = new Model(_config);
        _tokenizer = new Tokenizer(_model);
    }

    public int[][] Run(int[][] prompts, int newTokens, Action? onFirstToken)
    {
        using var parameters = new GeneratorParams(_model);
        parameters.SetSearchOption("do_sample", false);
        parameters.SetSearchOption("max_length", prompts.Max(p => p.Length) + newTokens);
        parameters.SetSearchOption("batch_size", prompts.Length);
        using var generator = new Generator(_model, parameters);
        using var sequences = _tokenizer.EncodeBatch([.. prompts.Select(_ => string.Empty)]);
        for (var i = 0; i < prompts.Length; i++)
        {
            foreach (var token in prompts[i])
            {
                sequences.Append(token, (ulong)i);
            }
        }

        generator.AppendTokenSequences(sequences);
        var generated = prompts.Select(_ => new List<int>()).ToArray();
        for (var step = 0; step < newTokens && !generator.IsDone(); step++)
        {
            generator.GenerateNextToken();
            var next = generator.GetNextTokens();
            for (var i = 0; i < prompts.Length; i++)
            {
                generated[i].Add(next[i]);
            }

            if (step == 0)
            {
                onFirstToken?.Invoke();
            }
        }

        return [.. generated.Select(g => g.ToArray())];
    }

    public void Dispose()
    {
        _tokenizer.Dispose();
        _model.Dispose();
        _config.Dispose();
    }
}
