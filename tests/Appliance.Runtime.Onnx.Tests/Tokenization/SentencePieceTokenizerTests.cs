using Appliance.Engine.Output;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>
/// SentencePiece models trained here with spm_train (BPE and unigram, as Llama 2's was trained) against the reference
/// implementation itself: spm_encode's ids and spm_decode's text.
/// </summary>
public sealed class SentencePieceTokenizerTests
{
    private static readonly string[] Texts =
    [
        "Hello, world!",
        "the model and the data",
        "  leading and trailing spaces  ",
        "multiple     spaces\tand\ttabs",
        "naïve café, Ελληνικά, русский, 日本語のテキスト, 한국어",
        "emoji 👋🏽🚀 and symbols ∑∫√ ≠ ≤",
        "def f(x):    return x**2 + 3.14159 # code",
        "numbers 1234567890 and 3.5e-7 and 1,000,000",
        "rare bytes \u0007 and \u00AD soft hyphen",
        "tokentokentoken      quququ  ",
    ];

    public static TheoryData<string, bool, string> Cases()
    {
        var cases = new TheoryData<string, bool, string>();
        foreach (var (type, byteFallback) in new[] { ("bpe", true), ("unigram", true), ("bpe", false), ("unigram", false) })
        {
            foreach (var text in Texts)
            {
                cases.Add(type, byteFallback, text);
            }
        }

        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Token_ids_equal_sentencepiece_itself(string modelType, bool byteFallback, string text)
    {
        var model = SentencePieceModels.Model(modelType, byteFallback);
        var ours = SentencePieceTokenizer.Load(model, addBeginningOfSentence: false).Encode(text);
        Assert.Equal(SentencePieceModels.ReferenceIds(model, text), ours);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decoding_equals_sentencepiece_itself(string modelType, bool byteFallback, string text)
    {
        var model = SentencePieceModels.Model(modelType, byteFallback);
        var ids = SentencePieceModels.ReferenceIds(model, text);
        Assert.Equal(SentencePieceModels.ReferenceText(model, ids), SentencePieceTokenizer.Load(model, addBeginningOfSentence: false).Decode(ids));
    }

    [Theory]
    [InlineData("bpe")]
    [InlineData("unigram")]
    public void Streaming_keeps_every_space_and_character(string modelType)
    {
        var tokenizer = SentencePieceTokenizer.Load(SentencePieceModels.Model(modelType), addBeginningOfSentence: false);
        foreach (var text in Texts)
        {
            var ids = tokenizer.Encode(text);
            var detokenizer = new IncrementalDetokenizer(tokenizer);
            var pieces = ids.Select(detokenizer.Push).ToList();

            Assert.Equal(tokenizer.Decode(ids), string.Concat(pieces) + detokenizer.Flush());
            Assert.Equal(text, tokenizer.Decode(ids)); // byte fallback loses nothing
            Assert.All(pieces, piece => Assert.DoesNotContain('\uFFFD', piece));
        }
    }

    [Fact]
    public void Ids_that_start_with_byte_fallback_keep_the_next_word_s_space()
    {
        var tokenizer = SentencePieceTokenizer.Load(SentencePieceModels.Model("bpe"), addBeginningOfSentence: false);
        var ids = tokenizer.Encode("a 🚀 and");
        var firstByte = ids.ToList().FindIndex(id => id is >= 3 and < 259); // <0x00>..<0xFF> follow unk, bos and eos
        Assert.True(firstByte > 0, "the emoji should be spelled with byte-fallback tokens");

        Assert.Equal("🚀 and", tokenizer.Decode(ids.Skip(firstByte)));
    }

    [Theory]
    [InlineData("bpe")]
    [InlineData("unigram")]
    public void Special_tokens_written_in_the_text_become_their_ids(string modelType)
    {
        var model = SentencePieceModels.Model(modelType);
        const string Turn = "[INST] the model [/INST] the data";

        // Legacy (Hugging Face's default, Meta's reference): the text after a special token is encoded as a fresh input.
        var legacy = SentencePieceTokenizer.Load(model, addBeginningOfSentence: false).Encode("<s>" + Turn + "</s>");
        Assert.Equal([1, .. SentencePieceModels.ReferenceIds(model, Turn), 2], legacy);

        // Non-legacy: no dummy-prefix space after a special token, so at most the leading "▁" piece is saved.
        var tokenizer = SentencePieceTokenizer.Load(model, addBeginningOfSentence: false, legacy: false);
        var ids = tokenizer.Encode("<s>" + Turn + "</s>");
        Assert.Equal(1, ids[0]);
        Assert.Equal(2, ids[^1]);
        Assert.Equal(Turn, tokenizer.Decode(ids));
        Assert.InRange(ids.Count - 2, legacy.Count - 3, legacy.Count - 2);
        Assert.NotEqual(legacy, ids);
    }

    [Fact]
    public void Added_tokens_past_the_model_s_pieces_encode_and_decode()
    {
        // A ChatML fine-tune of a 700-piece model: its markers are ids past the model's own pieces.
        const int Beyond = 700 + 100;
        var tokenizer = SentencePieceTokenizer.Load(SentencePieceModels.Model("bpe"), addBeginningOfSentence: false,
            new Dictionary<string, int> { ["<|im_start|>"] = Beyond, ["<|im_end|>"] = Beyond + 1 }, legacy: false);

        var ids = tokenizer.Encode("<|im_start|>the data<|im_end|>");

        Assert.Equal(Beyond, ids[0]);
        Assert.Equal(Beyond + 1, ids[^1]);
        Assert.Equal("<|im_start|>the data<|im_end|>", tokenizer.Decode(ids));
    }

    [Fact]
    public void The_folder_decides_and_tokenizer_config_governs_bos()
    {
        using var folder = new TempFolder("spm-folder");
        File.Copy(SentencePieceModels.Model("bpe"), folder.Combine("tokenizer.model"));
        Assert.Equal(1, TokenizerLoader.Load(folder.Path).EncodeWithSpecialTokens("Hi")[0]);
        Assert.NotEqual(1, TokenizerLoader.Load(folder.Path).Encode("Hi")[0]); // a rendered chat template writes its own

        File.WriteAllText(folder.Combine("tokenizer_config.json"), """{"add_bos_token": false, "added_tokens_decoder": {"3": {"content": "<|turn|>", "special": true}}}""");
        var tokenizer = TokenizerLoader.Load(folder.Path);
        Assert.NotEqual(1, tokenizer.EncodeWithSpecialTokens("Hi")[0]);
        Assert.Equal([3], tokenizer.Encode("<|turn|>"));
    }

    [Fact]
    public async Task A_model_with_a_compiled_normalizer_is_refused_naming_it()
    {
        using var folder = new TempFolder("spm-nfkc");
        var corpus = folder.Combine("corpus.txt");
        File.WriteAllLines(corpus, Enumerable.Range(0, 200).Select(i => $"line {i} of some text with ﬁ ligatures and full-width ＡＢＣ"));
        var (exitCode, output) = await ProcessRunner.RunAsync("spm_train", ["--input=" + corpus, "--model_prefix=" + folder.Combine("tokenizer"), "--vocab_size=60", "--hard_vocab_limit=false", "--minloglevel=2"]);
        Assert.True(exitCode == 0, output);

        var error = Assert.Throws<ModelFolderException>(() => SentencePieceTokenizer.Load(folder.Combine("tokenizer.model"), addBeginningOfSentence: false));
        Assert.Contains("nmt_nfkc", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_folder_without_a_tokenizer_is_refused_naming_what_it_needs()
    {
        using var folder = new TempFolder("no-tokenizer");
        var error = Assert.Throws<ModelFolderException>(() => TokenizerLoader.Load(folder.Path));
        Assert.Contains("tokenizer.json", error.Message, StringComparison.Ordinal);
        Assert.Contains("tokenizer.model", error.Message, StringComparison.Ordinal);
    }
}
