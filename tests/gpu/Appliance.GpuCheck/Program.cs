using System.Diagnostics;
using System.Globalization;
using Appliance.Engine;
using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Runtime.Onnx.Tokenization;

// Usage: appliance-gpu-check [--models DIR] [--device N] [--variants fp16,int4,builder,longrope] [--size base-llama|small-llama]
//                            [--prompt-tokens 64] [--new-tokens 64] [--allow-cpu-fallback] [--no-probe]
// Writes each builder-style export (deterministic weights), runs the engine on the CPU and on CUDA device N, and prints
// one table: time to first token, decode tokens/s at batch 1 and 8, device memory, KV bytes moved while decoding,
// and how many greedy tokens the CUDA run shares with the CPU run; then the prefix cache's and prompt scoring's tables. Exits non-zero when a session fell back to the CPU
// or a variant failed. The variants are CUDA-shaped: attention in float16 (ONNX Runtime's CUDA GroupQueryAttention
// takes float16 and bfloat16 only; the float32 CPU exports are refused on CUDA by design), int4 = MatMulNBits weights
// with float16 attention, as the model builder's CUDA int4 export; longrope = fp16 with LongRoPE's two rotary caches,
// switching 16 positions below the prompt length, so that the batch holds rows on both sides (a wider mask on CUDA).
var culture = CultureInfo.InvariantCulture;
string Value(string name, string fallback) => Array.IndexOf(args, name) is var at and >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
var models = Value("--models", Path.Combine(Path.GetTempPath(), "appliance-gpu-models"));
var device = int.Parse(Value("--device", "0"), culture);
var variants = Value("--variants", "fp16,int4,builder,longrope").Split(',');
var size = Value("--size", "base-llama");
var promptTokens = int.Parse(Value("--prompt-tokens", "64"), culture);
var newTokens = int.Parse(Value("--new-tokens", "64"), culture);
// Rehearsal on a machine without a GPU: the "CUDA" runs fall back to the CPU (and the check still fails), so the rest
// of the check can be exercised before a lent machine's minutes are spent on it.
var allowFallback = args.Contains("--allow-cpu-fallback");
var runTimeout = TimeSpan.FromSeconds(60); // a run that hangs on the device fails its row, not the device call's time

var rows = new List<string>
{
    "| export | KV / logits | run on | TTFT b1 (ms) | decode b1 (tok/s) | decode b8 (tok/s) | device memory (MiB) | planned device memory (MiB) | pinned logits | KV bytes moved decoding | greedy tokens equal to CPU (b1; b8) |",
    "|---|---|---|---:|---:|---:|---:|---:|---|---:|---|",
};
var cacheRows = new List<string>
{
    "| export | run on | TTFT, 900-token prompt, first (ms) | TTFT, same prompt again (ms) | tokens reused | greedy tokens equal |",
    "|---|---|---:|---:|---:|---|",
};
var scoreRows = new List<string>
{
    "| export | run on | scored 256-token prompt (ms) | largest logprob difference vs CPU | likeliest token equal to CPU |",
    "|---|---|---:|---:|---|",
};
var failed = false;
var started = Stopwatch.StartNew();
void Progress(string what) => Console.Error.WriteLine(string.Format(culture, "[{0,6:F1} s] {1}", started.Elapsed.TotalSeconds, what));

// Each row is printed as soon as it exists (a crash or the device call's time limit must not take the rows already
// measured with it), and both tables again, whole, at the end. Any failure of a variant is its row's, not the run's.
void Add(List<string> table, string row)
{
    table.Add(row);
    Console.WriteLine(row);
}

string Failure(Exception exception) => $"FAILED: {exception.GetType().Name}: {exception.Message.ReplaceLineEndings(" ")}";

// First, in seconds: can a session run on the device at all? A provider that cannot load (a missing cuDNN or NVRTC,
// which the loader only looks for at the first run) would otherwise show only after every variant's CPU reference.
if (!args.Contains("--no-probe"))
{
    try
    {
        var probe = Path.Combine(models, "probe");
        if (!File.Exists(Path.Combine(probe, "manifest.json")))
        {
            SyntheticModelFolder.Write(SyntheticModelSpec.TinyLlama with { Precision = BoundaryPrecision.Float16, CudaTf32 = false }, probe);
        }

        using var runner = new OnnxDecoderRunner(ModelFolder.Open(probe), "probe", new RunnerOptions { MaxBatchSize = 1, CudaDeviceId = device, RequireCuda = !allowFallback },
            new StderrLogger());
        runner.Execute([new RunnerSequence(1, new[] { 1, 2, 3 }, 0)]);
        Progress($"probe: a session ran on {runner.Traffic.Device}");
    }
    catch (Exception exception)
    {
        Console.WriteLine($"CUDA probe {Failure(exception)}");
        return 2;
    }
}

foreach (var variant in variants)
{
    var folder = Path.Combine(models, $"{size}-{variant}");
    var prompts = Enumerable.Range(0, 8).Select(i => Enumerable.Range(0, promptTokens - (i * 3)).Select(j => ((i * 7919) + (j * 104729) + 13) % 50000).ToArray()).ToArray();
    Measurement? cpu = null;
    try
    {
        if (!File.Exists(Path.Combine(folder, "manifest.json")))
        {
            Progress($"{variant}: writing {folder}");
            SyntheticModelFolder.Write(Spec(size, variant), folder);
        }

        Progress($"{variant}: on the CPU");
        cpu = await MeasureAsync(folder, variant, prompts, null);
        Add(rows, cpu.Row(variant, "cpu", null));
        Progress($"{variant}: on cuda:{device}");
        var cuda = await MeasureAsync(folder, variant, prompts, device);
        failed |= cuda.Device != $"cuda:{device}";
        Add(rows, cuda.Row(variant, cuda.Device, cpu));
    }
    catch (Exception exception)
    {
        failed = true;
        Add(rows, $"| {variant} | | {(cpu is null ? "cpu" : $"cuda:{device}")} | {Failure(exception)} | | | | | | | |");
        continue;
    }

    try
    {
        Progress($"{variant}: prefix cache on cuda:{device}");
        Add(cacheRows, await PrefixCacheRowAsync(folder, variant, device));
    }
    catch (Exception exception)
    {
        failed = true;
        Add(cacheRows, $"| {variant} | cuda:{device} | {Failure(exception)} | | | |");
    }

    try
    {
        Progress($"{variant}: scoring a prompt on the CPU and on cuda:{device}");
        Add(scoreRows, await ScoringRowAsync(folder, variant, device));
    }
    catch (Exception exception)
    {
        failed = true;
        Add(scoreRows, $"| {variant} | cuda:{device} | {Failure(exception)} | | |");
    }
}

Progress("done");
Console.WriteLine();
Console.WriteLine(string.Join(Environment.NewLine, rows));
Console.WriteLine();
Console.WriteLine(string.Join(Environment.NewLine, cacheRows));
Console.WriteLine();
Console.WriteLine(string.Join(Environment.NewLine, scoreRows));
if (failed)
{
    Console.Error.WriteLine("FAILED: a variant failed (its row says why; a CUDA provider that could not load is one)");
}

return failed ? 1 : 0;

SyntheticModelSpec Spec(string name, string variant)
{
    var spec = (name == "small-llama"
        ? SyntheticModelSpec.TinyLlama with { HiddenSize = 384, Layers = 4, Heads = 8, KvHeads = 2, ContextLength = 1024 }
        : SyntheticModelSpec.BaseLlama) with { CudaTf32 = false };
    return variant switch
    {
        "fp16" => spec with { Precision = BoundaryPrecision.Float16 },
        "bf16" => spec with { Precision = BoundaryPrecision.BFloat16 },
        "int4" => spec with { Int4Weights = true, Int4AccuracyLevel = 0, Precision = BoundaryPrecision.Float16 },
        "longrope" => spec with { Precision = BoundaryPrecision.Float16, LongRopeSwitch = promptTokens - 16 },
        // As the builder writes Llama 3 / Mistral for CUDA: query heads in groups of 4 per KV head (another decode
        // kernel than groups of 3), weights in model.onnx.data, and a sliding window shorter than the prompts.
        "builder" => spec with { Precision = BoundaryPrecision.Float16, KvHeads = spec.Heads / 4, ExternalData = true, SlidingWindow = Math.Max(8, promptTokens / 2) },
        _ => spec,
    };
}

// The prefix cache's copies on the device: a long prompt, then the same prompt again (its blocks copied in, not computed).
async Task<string> PrefixCacheRowAsync(string folder, string variant, int cudaDevice)
{
    var runner = new OnnxDecoderRunner(ModelFolder.Open(folder), "check", new RunnerOptions { MaxBatchSize = 8, CudaDeviceId = cudaDevice, RequireCuda = !allowFallback });
    using var engine = new GenerationEngine(runner, Gpt2Tokenizer.Instance, new SchedulerOptions { MaxBatchSize = 8, RunTimeout = runTimeout });
    var prompt = Enumerable.Range(0, 900).Select(j => ((j * 104729) + 7) % 50000).ToArray();
    var greedy = new SamplingParams { Temperature = 0, MaxTokens = 16, IgnoreEos = true };
    var other = Enumerable.Range(0, 100).Select(j => ((j * 31) + 5) % 50000).ToArray();
    await RunAsync(engine, other, greedy with { MaxTokens = 4 }, Stopwatch.StartNew()); // warm-up on another prompt: nothing of this one cached
    var first = await RunAsync(engine, prompt, greedy, Stopwatch.StartNew());
    var again = await RunAsync(engine, prompt, greedy, Stopwatch.StartNew());
    var (_, hits) = engine.PrefixCacheCounters;
    return string.Format(CultureInfo.InvariantCulture, "| {0} | {1} | {2:F0} | {3:F0} | {4} | {5} |",
        variant, runner.Traffic.Device, first.First * 1000, again.First * 1000, hits, first.Tokens.SequenceEqual(again.Tokens) ? "yes" : "NO");
}

// Scoring a prompt (echo with logprobs): every position's logits cut on the device and copied in wide chunks with a
// past. The CUDA scores against the CPU's, position by position.
async Task<string> ScoringRowAsync(string folder, string variant, int cudaDevice)
{
    var prompt = Enumerable.Range(0, 256).Select(j => ((j * 7907) + 3) % 50000).ToArray();
    var (_, _, reference) = await ScoreAsync(folder, prompt, null);
    var (ranOn, milliseconds, scores) = await ScoreAsync(folder, prompt, cudaDevice);
    failed |= ranOn != $"cuda:{cudaDevice}" || scores.Count != prompt.Length - 1;
    var difference = scores.Zip(reference, (a, b) => Math.Abs(a.Logprob - b.Logprob)).DefaultIfEmpty(float.NaN).Max();
    var likeliest = scores.Zip(reference, (a, b) => a.TopAlternatives[0].TokenId == b.TopAlternatives[0].TokenId).Count(same => same);
    return string.Format(CultureInfo.InvariantCulture, "| {0} | {1} | {2:F0} | {3:F4} | {4}/{5} |",
        variant, ranOn, milliseconds, difference, likeliest, prompt.Length - 1);
}

async Task<(string Device, double Milliseconds, IReadOnlyList<TokenLogprob> Scores)> ScoreAsync(string folder, int[] prompt, int? cudaDevice)
{
    var runner = new OnnxDecoderRunner(ModelFolder.Open(folder), "check", new RunnerOptions { MaxBatchSize = 8, CudaDeviceId = cudaDevice, RequireCuda = cudaDevice is not null && !allowFallback, PrefixCacheTokens = 0 });
    using var engine = new GenerationEngine(runner, Gpt2Tokenizer.Instance, new SchedulerOptions { MaxBatchSize = 8, RunTimeout = runTimeout });
    await ScoresAsync(engine, prompt); // warm-up
    var clock = Stopwatch.StartNew();
    var scores = await ScoresAsync(engine, prompt);
    return (runner.Traffic.Device, clock.Elapsed.TotalMilliseconds, scores);
}

static async Task<IReadOnlyList<TokenLogprob>> ScoresAsync(GenerationEngine engine, int[] prompt)
{
    IReadOnlyList<TokenLogprob>? scores = null;
    var scoring = new SamplingParams { MaxTokens = 0, Logprobs = true, TopLogprobs = 1 };
    await using var stream = engine.Submit(new GenerationRequest(Guid.NewGuid().ToString("N"), prompt, scoring) { PromptLogprobs = true });
    await foreach (var delta in stream)
    {
        scores ??= delta.PromptLogprobs;
    }

    return scores ?? [];
}

async Task<Measurement> MeasureAsync(string folder, string variant, int[][] prompts, int? cudaDevice)
{
    var before = DeviceMemoryUsedMiB(cudaDevice);
    // Without the prefix cache: the warm-up's prompt would make the single request's TTFT a cache hit, and the bytes
    // moved would count block copies, not the row moves this column shows. A CUDA run that cannot load the provider
    // fails with ONNX Runtime's reason instead of falling back to the CPU unseen.
    var runner = new OnnxDecoderRunner(ModelFolder.Open(folder), "check", new RunnerOptions { MaxBatchSize = 8, CudaDeviceId = cudaDevice, RequireCuda = cudaDevice is not null && !allowFallback, PrefixCacheTokens = 0 });
    // LongRoPE: prompts in chunks of 16, so that a long prompt's first chunks run with a mask widened past the switch.
    var scheduler = new SchedulerOptions { MaxBatchSize = 8, RunTimeout = runTimeout, PrefillTokenBudget = variant == "longrope" ? 16 : 1024 };
    using var engine = new GenerationEngine(runner, Gpt2Tokenizer.Instance, scheduler);
    var greedy = new SamplingParams { Temperature = 0, MaxTokens = newTokens, IgnoreEos = true };
    await RunAsync(engine, prompts[0], greedy with { MaxTokens = 8 }, Stopwatch.StartNew()); // warm-up
    var clock = Stopwatch.StartNew();
    var single = await RunAsync(engine, prompts[0], greedy, clock);
    var decode1 = (newTokens - 1) / (single.Last - single.First);
    // In the batch every request is submitted at once on the same clock (awaited, not a blocked thread each: a pool
    // thread per request reached the engine late on a small machine, and the decode window shrank to nothing):
    // decode from the last first token to the last token.
    var movedBefore = runner.Traffic.DeviceBytesCopied;
    clock.Restart();
    var batch = await Task.WhenAll(prompts.Select(p => RunAsync(engine, p, greedy, clock)));
    var decode8 = prompts.Length * (newTokens - 1) / (batch.Max(b => b.Last) - batch.Max(b => b.First));
    var moved = runner.Traffic.DeviceBytesCopied - movedBefore;
    var memory = DeviceMemoryUsedMiB(cudaDevice) - before;
    // What placement would reserve for this replica, beside what nvidia-smi saw it take.
    var plan = MemoryPlan.For(ModelFolder.Open(folder), runner.Signature, 8, contextLength: null, cuda: cudaDevice is not null, prefixCacheTokens: 0);
    return new Measurement(runner.Traffic.Device, $"{runner.Signature.KvType}/{runner.Signature.LogitsType}", single.First * 1000, decode1, decode8, memory,
        plan.DeviceBytes / 1048576.0, runner.Traffic.PinnedHostLogits, moved, single.Tokens, [.. batch.Select(b => b.Tokens)]);
}

static async Task<(double First, double Last, List<int> Tokens)> RunAsync(GenerationEngine engine, int[] prompt, SamplingParams sampling, Stopwatch clock)
{
    var start = clock.Elapsed.TotalSeconds;
    double? first = null;
    var tokens = new List<int>();
    await using var stream = engine.Submit(new GenerationRequest(Guid.NewGuid().ToString("N"), prompt, sampling));
    await foreach (var delta in stream)
    {
        if (delta.TokenIds.Count > 0)
        {
            first ??= clock.Elapsed.TotalSeconds - start;
            tokens.AddRange(delta.TokenIds);
        }
    }

    return (first ?? double.NaN, clock.Elapsed.TotalSeconds - start, tokens);
}

static double DeviceMemoryUsedMiB(int? device)
{
    if (device is null)
    {
        return double.NaN;
    }

    try
    {
        var query = new ProcessStartInfo("nvidia-smi", $"--query-gpu=memory.used --format=csv,noheader,nounits -i {device}") { RedirectStandardOutput = true };
        using var process = Process.Start(query);
        var text = process?.StandardOutput.ReadToEnd().Trim() ?? string.Empty;
        process?.WaitForExit();
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var mib) ? mib : double.NaN;
    }
    catch (System.ComponentModel.Win32Exception)
    {
        return double.NaN; // no nvidia-smi: no driver on this machine
    }
}

internal sealed record Measurement(
    string Device, string Types, double TtftMs, double Decode1, double Decode8, double MemoryMiB, double PlannedMiB, bool PinnedLogits, long MovedBytes, List<int> Single, List<int>[] Batch)
{
    public string Row(string variant, string runOn, Measurement? cpu)
    {
        var agreement = cpu is null ? "(reference)" : $"{Common(Single, cpu.Single)}/{Single.Count}; {Batch.Zip(cpu.Batch, Common).Sum()}/{Batch.Sum(b => b.Count)}";
        return string.Format(CultureInfo.InvariantCulture, "| {0} | {1} | {2} | {3:F0} | {4:F1} | {5:F1} | {6:F0} | {7:F0} | {8} | {9} | {10} |",
            variant, Types, runOn, TtftMs, Decode1, Decode8, MemoryMiB, PlannedMiB, PinnedLogits ? "yes" : "no", MovedBytes, agreement);
    }

    /// <summary>Greedy tokens both runs share before they first part (rounding differences make later ones diverge).</summary>
    private static int Common(List<int> a, List<int> b) => a.Zip(b).TakeWhile(p => p.First == p.Second).Count();
}

/// <summary>The runner's own log lines (which device, which CUDA options it was given) on standard error.</summary>
internal sealed class StderrLogger : Microsoft.Extensions.Logging.ILogger
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

    public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Console.Error.WriteLine($"  {logLevel} {eventId.Id}: {formatter(state, exception)}");
}
