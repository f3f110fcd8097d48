using System.Diagnostics;
using Appliance.Engine.Output;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>The real Llama 2 SentencePiece model against the reference implementation (Debian's spm_encode).</summary>
public sealed class SentencePieceTokenizerTests
{
    private static readonly string ModelPath = SharedData.File("tokenizers/llama2-sentencepiece/tokenizer.model");

    public static TheoryData<string> Texts =>
    [
        "Hello, world!",
        "  leading and trailing spaces  ",
        "multiple     spaces\tand\ttabs",
        "naïve café, Ελληνικά, русский, 日本語のテキスト, 한국어",
        "emoji 👋🏽🚀 and symbols ∑∫√ ≠ ≤",
        "def f(x):    return x**2 + 3.14159 # code",
        "numbers 1234567890 and 3.5e-7 and 1,000,000",
        "rare bytes \u0007 and \u00AD soft hyphen",
    ];

    [Theory]
    [MemberData(nameof(Texts))]
    public void Token_ids_equal_sentencepiece_itself(string text)
    {
        var ours = SentencePieceTokenizer.Load(ModelPath, addBeginningOfSentence: false).Encode(text);
        Assert.Equal(SpmEncode(text), ours);
    }

    [Theory]
    [MemberData(nameof(Texts))]
    public void Streaming_keeps_every_space_and_character(string text)
    {
        var tokenizer = SentencePieceTokenizer.Load(ModelPath, addBeginningOfSentence: false);
        var ids = tokenizer.Encode(text);
        var detokenizer = new IncrementalDetokenizer(tokenizer);
        var pieces = ids.Select(detokenizer.Push).ToList();

        Assert.Equal(tokenizer.Decode(ids), string.Concat(pieces) + detokenizer.Flush());
        Assert.All(pieces, piece => Assert.DoesNotContain('\uFFFD', piece));
    }

    [Fact]
    public void Ids_that_start_with_byte_fallback_keep_the_next_word_s_space()
    {
        var tokenizer = SentencePieceTokenizer.Load(ModelPath, addBeginningOfSentence: false);
        var ids = tokenizer.Encode("x 🚀 and");
        var firstByte = ids.ToList().FindIndex(id => id is >= 3 and < 259); // <0x00>..<0xFF> in Llama 2's vocabulary
        Assert.True(firstByte > 0, "the emoji should be spelled with byte-fallback tokens");

        Assert.Equal("🚀 and", tokenizer.Decode(ids.Skip(firstByte)));
    }

    [Fact]
    public void The_folder_decides_and_tokenizer_config_governs_bos()
    {
        using var folder = new TempFolder("spm-folder");
        File.Copy(ModelPath, folder.Combine("tokenizer.model"));
        Assert.Equal(1, TokenizerLoader.Load(folder.Path).Encode("Hi")[0]);

        File.WriteAllText(folder.Combine("tokenizer_config.json"), """{"add_bos_token": false}""");
        Assert.NotEqual(1, TokenizerLoader.Load(folder.Path).Encode("Hi")[0]);
    }

    [Fact]
    public void A_folder_without_a_tokenizer_is_refused_naming_what_it_needs()
    {
        using var folder = new TempFolder("no-tokenizer");
        var error = Assert.Throws<ModelFolderException>(() => TokenizerLoader.Load(folder.Path));
        Assert.Contains("tokenizer.json", error.Message, StringComparison.Ordinal);
        Assert.Contains("tokenizer.model", error.Message, StringComparison.Ordinal);
    }

    private static int[] SpmEncode(string text)
    {
        var start = new ProcessStartInfo("spm_encode", ["--model=" + ModelPath, "--output_format=id"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = new System.Text.UTF8Encoding(false),
            StandardOutputEncoding = System.Text.Encoding.UTF8,
        };
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception exception)
        {
            throw new InvalidOperationException("spm_encode is not installed: Debian's 'sentencepiece' package is the reference (.ci/run installs it)", exception);
        }

        using (process)
        {
            process.StandardInput.Write(text + "\n");
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            Assert.True(process.ExitCode == 0, process.StandardError.ReadToEnd());
            return [.. output.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(int.Parse)];
        }
    }
}
