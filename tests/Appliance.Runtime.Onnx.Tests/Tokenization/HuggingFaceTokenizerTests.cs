using Appliance.Engine.Output;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Runtime.Onnx.Tokenization.HuggingFace;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>
/// Real tokenizer.json files of both kinds (byte-level BPE: Llama 3, 3.1, Qwen 2.5, Qwen3, DeepSeek V3; SentencePiece-style with
/// byte fallback: Gemma 3, Llama 2) against the transformers.js port.
/// </summary>
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
        "中文和日本語のテキスト、数字12345と記号！",
        "rare scripts 𐌰𐌱𐌲 ᚠᚢᚦ and a lone private-use \uE000 character",
        "trailing newline and tab\t\n",
        "Tiếng Việt: việc này hợp lý, nhiều điều ở Việt Nam; jeho ektedir ایران", // words Llama 3 takes whole (ignore_merges)
    ];

    [Theory]
    [InlineData("llama3", "<|begin_of_text|>")]
    [InlineData("llama3_1", "<|eot_id|>")]
    [InlineData("qwen3", "<|im_start|>")]
    [InlineData("qwen2_5", "<tool_call>")]
    [InlineData("deepseek_v3", "<｜User｜>")]
    [InlineData("gemma3", "<start_of_turn>")]
    [InlineData("llama2", "<s>")]
    public void Token_ids_equal_the_reference_including_special_tokens_in_text(string family, string special)
    {
        var tokenizer = LoadedReferenceTokenizers.For(family);
        string[] texts = [.. Texts, $"{special}user\nHi there{special}"];
        var expected = ReferenceTokenizers.Encode(family, texts);

        for (var i = 0; i < texts.Length; i++)
        {
            var actual = tokenizer.Encode(texts[i]);
            Assert.True(expected[i].SequenceEqual(actual), $"text {i} '{texts[i]}': expected [{string.Join(",", expected[i])}], got [{string.Join(",", actual)}]");
        }
    }

    [Fact]
    public void Lone_surrogates_a_template_may_cut_out_of_a_pair_encode_as_replacement_characters()
    {
        var tokenizer = LoadedReferenceTokenizers.For("llama3");

        var ids = tokenizer.Encode("a\uD800\uD800é and \uD83D tail \uDE00");

        Assert.Equal("a\uFFFD\uFFFDé and \uFFFD tail \uFFFD", tokenizer.Decode(ids));
    }

    [Fact]
    public void Llama_3_takes_a_word_its_vocabulary_holds_whole_even_where_the_merges_would_split_it()
    {
        // Its tokenizer.json sets ignore_merges (tiktoken's rule); 587 of its tokens encode differently through the
        // merges, most of them in the multilingual ids from 100,000 on. Every 7th of those, each on its own.
        var tokenizer = LoadedReferenceTokenizers.For("llama3");
        string[] words = [.. Enumerable.Range(0, 28000 / 7)
            .Select(i => tokenizer.Decode([100000 + (7 * i)]))
            .Where(word => word.Length > 0 && !word.Contains('\uFFFD', StringComparison.Ordinal))];
        var expected = ReferenceTokenizers.Encode("llama3", words);

        var wrong = words.Where((word, i) => !expected[i].SequenceEqual(tokenizer.Encode(word))).ToList();
        Assert.True(wrong.Count == 0, $"{wrong.Count} of {words.Length} words differ, e.g. '{string.Join("', '", wrong.Take(5))}'");
        Assert.True(words.Length > 3500);
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("llama3_1")]
    [InlineData("qwen3")]
    [InlineData("qwen2_5")]
    [InlineData("deepseek_v3")]
    [InlineData("gemma3")]
    [InlineData("llama2")]
    public void A_plain_prompt_gets_what_the_post_processor_adds_as_the_reference_does(string family)
    {
        // /v1/completions: Llama 2 and 3, Gemma 3 and DeepSeek V3 start with their BOS; Qwen3 adds nothing.
        var tokenizer = LoadedReferenceTokenizers.For(family);
        var expected = ReferenceTokenizers.Encode(family, Texts, addSpecialTokens: true);

        for (var i = 0; i < Texts.Length; i++)
        {
            var actual = tokenizer.EncodeWithSpecialTokens(Texts[i]);
            Assert.True(expected[i].SequenceEqual(actual), $"text {i} '{Texts[i]}': expected [{string.Join(",", expected[i])}], got [{string.Join(",", actual)}]");
        }
    }

    [Theory]
    [InlineData("llama3")]
    [InlineData("llama3_1")]
    [InlineData("qwen3")]
    [InlineData("qwen2_5")]
    [InlineData("deepseek_v3")]
    [InlineData("gemma3")]
    [InlineData("llama2")]
    public void Streaming_detokenisation_is_exact(string family)
    {
        var tokenizer = LoadedReferenceTokenizers.For(family);
        foreach (var text in Texts)
        {
            var ids = tokenizer.Encode(text);
            var detokenizer = new IncrementalDetokenizer(tokenizer);
            var pieces = ids.Select(detokenizer.Push).ToList();
            var expected = family is "qwen3" or "qwen2_5" ? text.Normalize(System.Text.NormalizationForm.FormC) : text; // Qwen3 normalises to NFC
            Assert.Equal(expected, tokenizer.Decode(ids));
            Assert.Equal(expected, string.Concat(pieces) + detokenizer.Flush());
            Assert.All(pieces, piece => Assert.DoesNotContain('\uFFFD', piece));
        }
    }

    [Theory]
    [InlineData("llama3", 128001)] // <|end_of_text|>, as this base model's tokenizer_config says
    [InlineData("llama3_1", 128009)] // <|eot_id|>
    [InlineData("qwen3", 151645)] // <|im_end|>
    [InlineData("qwen2_5", 151645)]
    [InlineData("gemma3", 106)] // <end_of_turn>
    [InlineData("deepseek_v3", 1)] // <｜end▁of▁sentence｜>
    [InlineData("llama2", 2)] // </s>
    public void The_family_s_eos_token_is_a_stop_token(string family, int expected)
    {
        var folder = ReferenceTokenizers.ModelFolder(family);
        Assert.Equal([expected], StopTokens.FromTokenizerConfig(folder, LoadedReferenceTokenizers.For(family)));
    }

    [Theory]
    [InlineData("gemma3", typeof(HuggingFaceSentencePieceTokenizer))]
    [InlineData("llama2", typeof(HuggingFaceSentencePieceTokenizer))]
    [InlineData("deepseek_v3", typeof(HuggingFaceTokenizer))]
    public void The_file_decides_the_kind_of_tokenizer(string family, Type expected) =>
        Assert.IsType(expected, LoadedReferenceTokenizers.For(family));

    [Theory]
    [InlineData("""{"model":{"type":"WordPiece","vocab":{}}}""", "'model.type'")]
    [InlineData("""{"normalizer":{"type":"Lowercase"},"pre_tokenizer":{"type":"ByteLevel"},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}""", "'normalizer'")]
    [InlineData("""{"pre_tokenizer":{"type":"Whitespace"},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}""", "'pre_tokenizer'")]
    [InlineData("""{"decoder":{"type":"WordPiece"},"model":{"type":"BPE","byte_fallback":true,"vocab":{"a":0},"merges":[]}}""", "'decoder'")]
    [InlineData("""{"pre_tokenizer":{"type":"Metaspace","split":true},"model":{"type":"BPE","byte_fallback":true,"vocab":{"a":0},"merges":[]}}""", "'pre_tokenizer'")]
    [InlineData("""{"model":{"type":"BPE","vocab":{"a":0},"merges":[3]}}""", "'model.merges'")]
    [InlineData("""{"model": """, "not valid JSON")]
    [InlineData("""{"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\p{Xy}+"},"behavior":"Isolated"},{"type":"ByteLevel","use_regex":false}]},"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}""", "unknown Unicode category 'Xy'")]
    public void Tokenizer_files_not_understood_are_refused_at_load_naming_the_key(string json, string expected)
    {
        using var folder = new TempFolder("tokenizer-json");
        File.WriteAllText(folder.Combine("tokenizer.json"), json);
        var error = Assert.Throws<ModelFolderException>(() => TokenizerLoader.Load(folder.Path));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }
}
