using System.Diagnostics;
using System.Text;

namespace Appliance.Tests.Common;

/// <summary>
/// SentencePiece models trained for the tests with Debian's spm_train (the reference implementation) on a corpus
/// written here, with the settings Llama 2's tokenizer.model was trained with (identity normalization, dummy prefix,
/// spaces kept, digits split, byte fallback), and spm_encode/spm_decode as the reference to compare against. Each
/// kind is trained once per test process.
/// </summary>
public static class SentencePieceModels
{
    private static readonly Dictionary<string, Lazy<string>> Trained = [];
    private static readonly string Root = Path.Combine(Path.GetTempPath(), "appliance-tests", $"spm-{Environment.ProcessId}");

    /// <summary>The path of a tokenizer.model of the given kind ("bpe" or "unigram"), trained on first use.</summary>
    public static string Model(string modelType, bool byteFallback = true)
    {
        var name = $"{modelType}-{(byteFallback ? "bytes" : "unk")}";
        Lazy<string> model;
        lock (Trained)
        {
            if (!Trained.TryGetValue(name, out model!))
            {
                model = new Lazy<string>(() => Train(name, modelType, byteFallback));
                Trained[name] = model;
            }
        }

        return model.Value;
    }

    /// <summary>
    /// A Unigram model trained as XLM-RoBERTa's sentencepiece.bpe.model was: NFKC normalization compiled into the
    /// model (nmt_nfkc), extra whitespace removed, no byte fallback, &lt;unk&gt; 0, &lt;s&gt; 1, &lt;/s&gt; 2. Trained once
    /// per test process.
    /// </summary>
    public static string XlmRobertaStyle()
    {
        Lazy<string> model;
        lock (Trained)
        {
            if (!Trained.TryGetValue("xlmr", out model!))
            {
                model = new Lazy<string>(() =>
                {
                    var folder = Path.Combine(Root, "xlmr");
                    Directory.CreateDirectory(folder);
                    var corpus = Path.Combine(folder, "corpus.txt");
                    File.WriteAllText(corpus, Corpus(), new UTF8Encoding(false));
                    var prefix = Path.Combine(folder, "sentencepiece.bpe");
                    Run("spm_train", [
                        "--input=" + corpus, "--model_prefix=" + prefix, "--model_type=unigram", "--vocab_size=600", "--hard_vocab_limit=false",
                        "--normalization_rule_name=nmt_nfkc", "--add_dummy_prefix=true", "--remove_extra_whitespaces=true",
                        "--character_coverage=0.995", "--unk_id=0", "--bos_id=1", "--eos_id=2", "--pad_id=-1", "--num_threads=1", "--minloglevel=2",
                    ], input: null);
                    return prefix + ".model";
                });
                Trained["xlmr"] = model;
            }
        }

        return model.Value;
    }

    /// <summary>How many pieces a trained model holds (spm_export_vocab's lines).</summary>
    public static int PieceCount(string modelPath) => Vocabulary(modelPath).Count;

    /// <summary>The model's pieces in id order, as spm_export_vocab lists them.</summary>
    public static IReadOnlyList<string> Vocabulary(string modelPath) =>
        [.. Run("spm_export_vocab", ["--model=" + modelPath], input: null).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line.Split('\t')[0])];

    /// <summary>spm_encode's pieces (as text) for one line of text.</summary>
    public static string[] ReferencePieces(string modelPath, string text) =>
        Run("spm_encode", ["--model=" + modelPath, "--output_format=piece"], text).Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries);

    /// <summary>spm_encode's ids for one line of text (no BOS).</summary>
    public static int[] ReferenceIds(string modelPath, string text) =>
        [.. Run("spm_encode", ["--model=" + modelPath, "--output_format=id"], text).Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(int.Parse)];

    /// <summary>spm_decode's text for ids.</summary>
    public static string ReferenceText(string modelPath, IEnumerable<int> ids) =>
        Run("spm_decode", ["--model=" + modelPath, "--input_format=id"], string.Join(' ', ids)).TrimEnd('\n');

    private static string Train(string name, string modelType, bool byteFallback)
    {
        var folder = Path.Combine(Root, name);
        Directory.CreateDirectory(folder);
        var corpus = Path.Combine(folder, "corpus.txt");
        File.WriteAllText(corpus, Corpus(), new UTF8Encoding(false));
        var prefix = Path.Combine(folder, "tokenizer");
        Run("spm_train", [
            "--input=" + corpus, "--model_prefix=" + prefix, "--model_type=" + modelType, "--vocab_size=700", "--hard_vocab_limit=false",
            "--byte_fallback=" + (byteFallback ? "true" : "false"), "--split_digits=true", "--allow_whitespace_only_pieces=true",
            "--normalization_rule_name=identity", "--add_dummy_prefix=true", "--remove_extra_whitespaces=false",
            "--character_coverage=0.995", "--unk_id=0", "--bos_id=1", "--eos_id=2", "--pad_id=-1", "--num_threads=1", "--minloglevel=2",
        ], input: null);
        var model = Path.Combine(folder, "tokenizer.model");
        File.Move(prefix + ".model", model, overwrite: true);
        return model;
    }

    /// <summary>
    /// A deterministic corpus: words from a small alphabet mix (Latin with accents, Greek, Cyrillic, a little CJK),
    /// numbers, punctuation, code-like lines and runs of spaces, so that the trained vocabulary has whitespace pieces
    /// and leaves rarer characters to byte fallback.
    /// </summary>
    private static string Corpus()
    {
        var random = new Random(20261201);
        string[] syllables = ["the", "an", "ing", "ion", "er", "st", "qu", "al", "re", "co", "de", "ly", "ou", "ch", "é", "ça", "ün", "ση", "κα", "ни", "ро", "日本", "語", "data", "model", "token"];
        string[] punctuation = [",", ".", "!", "?", ":", ";", "(", ")", "\"", "'", "-", "+", "=", "*"];
        var text = new StringBuilder();
        for (var line = 0; line < 4000; line++)
        {
            var words = random.Next(3, 14);
            if (random.Next(6) == 0)
            {
                text.Append(' ', random.Next(1, 6)); // indented lines, as in code
            }

            for (var w = 0; w < words; w++)
            {
                if (w > 0)
                {
                    text.Append(random.Next(10) == 0 ? new string(' ', random.Next(2, 5)) : " ");
                }

                if (random.Next(8) == 0)
                {
                    text.Append(random.Next(0, 100000));
                }
                else
                {
                    for (var s = random.Next(1, 4); s > 0; s--)
                    {
                        text.Append(syllables[random.Next(syllables.Length)]);
                    }
                }

                if (random.Next(5) == 0)
                {
                    text.Append(punctuation[random.Next(punctuation.Length)]);
                }
            }

            text.Append('\n');
        }

        return text.ToString();
    }

    private static string Run(string program, string[] arguments, string? input)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardInput = input is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = input is not null ? new UTF8Encoding(false) : null,
            StandardOutputEncoding = Encoding.UTF8,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception exception)
        {
            throw new InvalidOperationException($"{program} is not installed: Debian's 'sentencepiece' package is the reference (tests/setup.sh installs it)", exception);
        }

        using (process)
        {
            if (input is not null)
            {
                process.StandardInput.Write(input + "\n");
                process.StandardInput.Close();
            }

            var stderr = process.StandardError.ReadToEndAsync();
            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return process.ExitCode == 0 ? output : throw new InvalidOperationException($"{program} failed ({process.ExitCode}): {stderr.Result}");
        }
    }
}
