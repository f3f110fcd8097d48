using Appliance.Engine.Output;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Runtime.Onnx.Tokenization.HuggingFace;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>Real byte-level BPE tokenizer.json files (Llama 3, 3.1, Qwen3) against the transformers.js port.</summary>
public sealed class HuggingFaceTokenizerTests
{
    private static readonly string[] Texts =
    [
        "Hello, world!",
        "  leading and trailing spaces  ",
        "multiple     spaces\tand\ttabs\n\nand new\r\nlines",
        "naïve café, Ελληνικά, русский, 日本語のテキスト, 한국어, עברית",
        "emoji 👋🏽🚀 and symbols ∑∫√ ≠ ≤ and a combining e\u0301",
        "def f(x):\n    return x**2 + 3.14159  # code",
        "numbers 1234567890 and 3.5e-7 and 1,000,000",
        "I'm sure they'll say it's fine; WE'VE done IT.",
    ];

    [Theory]
    [InlineData("llama3", "<|begin_of_text|>")]
    [InlineData("llama3_1", "<|eot_id|>")]
    [InlineData("qwen3", "<|im_start|>")]
    public void Token_ids_equal_the_reference_including_special_tokens_in_text(string family, string special)
    {
        var tokenizer = HuggingFaceTokenizer.Load(Path.Combine(ReferenceTokenizers.ModelFolder(family), "tokenizer.json"));
        string[] texts = [.. Texts, $"{special}user\nHi there{special}"];
        var expected = ReferenceTokenizers.Encode(family, texts);

        for (var i = 0; i < texts.Length; i++)
        {
            var actual = tokenizer.Encode(texts[i]);
            Assert.True(expected[i].SequenceEqual(actual), $"text {i} '{texts[i]}': expected [{string.Join(",", expected[i])}], got [{string.Join(",", actual)}]");
        }
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("llama3_1")]
    [InlineData("qwen3")]
    public void Streaming_detokenisation_is_exact(string family)
    {
        var tokenizer = TokenizerLoader.Load(ReferenceTokenizers.ModelFolder(family));
        foreach (var text in Texts)
        {
            var ids = tokenizer.Encode(text);
            var detokenizer = new IncrementalDetokenizer(tokenizer);
            var pieces = ids.Select(detokenizer.Push).ToList();
            var expected = family == "qwen3" ? text.Normalize(System.Text.NormalizationForm.FormC) : text; // Qwen3 normalises to NFC
            Assert.Equal(expected, string.Concat(pieces) + detokenizer.Flush());
            Assert.All(pieces, piece => Assert.DoesNotContain('\uFFFD', piece));
        }
    }

    [Theory]
    [InlineData("llama3", 128001)] // <|end_of_text|>, as this base model's tokenizer_config says
    [InlineData("llama3_1", 128009)] // <|eot_id|>
    [InlineData("qwen3", 151645)] // <|im_end|>
    public void The_family_s_eos_token_is_a_stop_token(string family, int expected)
    {
        var folder = ReferenceTokenizers.ModelFolder(family);
        Assert.Equal([expected], StopTokens.FromTokenizerConfig(folder, TokenizerLoader.Load(folder)));
    }

    [Theory]
    [InlineData("gemma3", "model.byte_fallback")]
    [InlineData("deepseek_v3", "pre_tokenizer")]
    public void Tokenizer_files_not_yet_supported_are_refused_at_load_naming_the_key(string family, string key)
    {
        var error = Assert.Throws<Appliance.Runtime.Onnx.Models.ModelFolderException>(() => TokenizerLoader.Load(ReferenceTokenizers.ModelFolder(family)));
        Assert.Contains($"'{key}'", error.Message, StringComparison.Ordinal);
    }
}
