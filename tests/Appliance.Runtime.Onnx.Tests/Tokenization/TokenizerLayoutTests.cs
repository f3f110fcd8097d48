using System.Text.Json.Nodes;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>
/// tokenizer.json layouts of real models beyond the reference families': SmolLM's digits split one by one before the
/// byte-level regex, and the non-legacy SentencePiece layout (Metaspace with prepend_scheme "first", no normalizer) of
/// Mistral v0.3 and recent Llama conversions. Each is a reference family's file with that part replaced, encoded by
/// the reference (transformers.js) with the same replacement.
/// </summary>
public sealed class TokenizerLayoutTests : IDisposable
{
    // ASCII digits only: transformers.js splits digits with \d, the tokenizers library (and the appliance) every Unicode number.
    private static readonly string[] Texts =
    [
        "numbers 1234567890 and 3.5e-7 and 1,000,000",
        "Hello, world!",
        "  leading and trailing spaces  ",
        "multiple     spaces\tand\ttabs\n\nand new\r\nlines",
        "naïve café, Ελληνικά, 日本語のテキスト and year 2026",
        "def f(x):\n    return x**2 + 3.14159  # code",
    ];

    private readonly TempFolder _folder = new("tokenizer-layouts");

    [Fact]
    public void Digits_split_one_by_one_before_the_byte_level_regex_encode_as_the_reference_does()
    {
        var preTokenizer = JsonNode.Parse("""
            {"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},
              {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}]}
            """)!.AsObject();

        AssertEncodesAsReference("llama3", new JsonObject { ["pre_tokenizer"] = preTokenizer }, [.. Texts, "<|begin_of_text|>room 101<|eot_id|>"]);
    }

    [Fact]
    public void Runs_of_digits_split_off_before_the_byte_level_regex_encode_as_the_reference_does()
    {
        var preTokenizer = JsonNode.Parse("""
            {"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":false},
              {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}]}
            """)!.AsObject();

        AssertEncodesAsReference("llama3", new JsonObject { ["pre_tokenizer"] = preTokenizer }, [.. Texts, "<|begin_of_text|>room 101<|eot_id|>"]);
    }

    [Theory]
    [InlineData("first")]
    [InlineData("always")]
    [InlineData("never")]
    public void A_metaspace_pre_tokenizer_encodes_as_the_reference_does_whatever_its_prepend_scheme(string scheme)
    {
        var parts = new JsonObject
        {
            ["normalizer"] = null,
            // add_prefix_space too, as files written before tokenizers 0.15 carry it: transformers.js prepends only with it.
            ["pre_tokenizer"] = JsonNode.Parse($$"""{"type":"Metaspace","replacement":"▁","add_prefix_space":true,"prepend_scheme":"{{scheme}}","split":false}"""),
            ["decoder"] = JsonNode.Parse("""
                {"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},{"type":"ByteFallback"},{"type":"Fuse"},
                  {"type":"Strip","content":" ","start":1,"stop":0}]}
                """),
        };

        // "first": after an added token the next segment gets no "▁" in front (the difference from the legacy layout);
        // "always": every segment gets one; "never": none does.
        AssertEncodesAsReference("llama2", parts, [.. Texts, "<s>Hi there<s> again", "Hi</s> there"], roundTrips: false);
    }

    [Theory]
    [InlineData("llama3", "<|eot_id|>", "<|start_header_id|>")] // byte-level BPE
    [InlineData("llama2", "<s>", "</s>")] // SentencePiece-style
    public void Added_tokens_that_strip_whitespace_beside_them_encode_as_the_reference_does(string family, string rstrip, string lstrip)
    {
        // As Phi-3's file marks <|user|>, <|assistant|> and <|end|>: the newline after them is never tokenised.
        var tokens = JsonNode.Parse(File.ReadAllText(Path.Combine(ReferenceTokenizers.ModelFolder(family), "tokenizer.json")))!["added_tokens"]!.AsArray();
        foreach (var token in tokens.Select(t => t!.AsObject()))
        {
            token["rstrip"] = (string)token["content"]! == rstrip;
            token["lstrip"] = (string)token["content"]! == lstrip;
        }

        string[] texts = [$"{rstrip}\n  Hello there  {lstrip} and {rstrip} {lstrip}", $"A\t{lstrip}{rstrip}\r\nB", $"{rstrip}   "];
        AssertEncodesAsReference(family, new JsonObject { ["added_tokens"] = tokens.DeepClone() }, texts, roundTrips: false);
        Assert.NotEqual(ReferenceTokenizers.Encode(family, texts)[0], TokenizerLoader.Load(_folder.Path).Encode(texts[0])); // the flags change the ids
    }

    [Fact]
    public void A_tokenizer_json_not_understood_refuses_the_model_even_beside_a_tokenizer_model()
    {
        // transformers uses tokenizer.json whenever there is one; the model file would lose its post-processor and
        // added tokens' settings, so no silent fallback.
        File.WriteAllText(_folder.Combine("tokenizer.json"), """{"model":{"type":"BPE","vocab":{},"merges":[]},"pre_tokenizer":{"type":"Whitespace"}}""");
        File.WriteAllText(_folder.Combine("tokenizer_config.json"), """{"add_bos_token":false}""");
        File.Copy(SentencePieceModels.Model("bpe"), _folder.Combine("tokenizer.model"));

        var failure = Assert.Throws<Appliance.Runtime.Onnx.Models.ModelFolderException>(() => TokenizerLoader.Load(_folder.Path));

        Assert.Contains("pre_tokenizer", failure.Message, StringComparison.Ordinal);
    }

    /// <param name="roundTrips">Whether decoding gives the text back (byte-level files do; SentencePiece drops a leading space).</param>
    private void AssertEncodesAsReference(string family, JsonObject replaced, string[] texts, bool roundTrips = true)
    {
        var source = ReferenceTokenizers.ModelFolder(family);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "tokenizer.json")))!.AsObject();
        foreach (var (key, value) in replaced)
        {
            json[key] = value?.DeepClone();
        }

        File.WriteAllText(_folder.Combine("tokenizer.json"), json.ToJsonString());
        File.Copy(Path.Combine(source, "tokenizer_config.json"), _folder.Combine("tokenizer_config.json"), overwrite: true);
        var tokenizer = TokenizerLoader.Load(_folder.Path);
        var expected = ReferenceTokenizers.Encode(family, texts, tokenizerJson: replaced);

        for (var i = 0; i < texts.Length; i++)
        {
            var actual = tokenizer.Encode(texts[i]);
            Assert.True(expected[i].SequenceEqual(actual), $"text {i} '{texts[i]}': expected [{string.Join(",", expected[i])}], got [{string.Join(",", actual)}]");
            if (roundTrips)
            {
                Assert.Equal(texts[i], tokenizer.Decode(actual));
            }
        }
    }

    public void Dispose() => _folder.Dispose();
}
