using Appliance.Engine.Output;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

public sealed class Gpt2TokenizerTests
{
    [Fact]
    public void Encodes_with_gpt2_ids()
    {
        // GPT-2: "Hello" = 15496, "," = 11, " world" = 995.
        Assert.Equal([15496, 11, 995], Gpt2Tokenizer.Instance.Encode("Hello, world"));
    }

    [Theory]
    [InlineData("naïve café — 東京 🚀 ok")]
    [InlineData("Ελληνικά και русский текст")]
    [InlineData("🧑‍🚀👩🏽‍🔬")]
    public void Streaming_detokenisation_never_emits_a_broken_character(string text)
    {
        var ids = Gpt2Tokenizer.Instance.Encode(text);
        Assert.True(ids.Count > text.Length / 4, "the text should span many byte-level tokens");
        var detokenizer = new IncrementalDetokenizer(Gpt2Tokenizer.Instance);
        var pieces = ids.Select(detokenizer.Push).ToList();

        Assert.Equal(text, string.Concat(pieces) + detokenizer.Flush());
        Assert.All(pieces, piece => Assert.DoesNotContain('\uFFFD', piece));
        Assert.Contains(pieces, piece => piece.Length == 0); // some tokens ended inside a character and were held
    }
}

/// <summary>The folder's tokenizer.json decides, whatever tokenizer class its configuration names.</summary>
public sealed class Gpt2TokenizerChoiceTests
{
    private const string Gpt2Class = """{"tokenizer_class": "GPT2Tokenizer"}""";

    [Fact]
    public void A_vocabulary_of_its_own_under_the_GPT2Tokenizer_class_is_used()
    {
        using var folder = new TempFolder("gpt2-class");
        File.Copy(Path.Combine(ReferenceTokenizers.ModelFolder("llama3"), "tokenizer.json"), folder.Combine("tokenizer.json"));
        File.WriteAllText(folder.Combine("tokenizer_config.json"), Gpt2Class);
        const string Text = "The folder's own vocabulary decides, not the declared class.";

        var tokenizer = TokenizerLoader.Load(folder.Path);

        Assert.IsNotType<Gpt2Tokenizer>(tokenizer);
        Assert.Equal(ReferenceTokenizers.Encode("llama3", [Text])[0], tokenizer.Encode(Text));
        Assert.NotEqual(Gpt2Tokenizer.Instance.Encode(Text), tokenizer.Encode(Text));
    }

    [Fact]
    public void GPT2_s_own_file_keeps_the_fast_implementation()
    {
        using var folder = new TempFolder("gpt2-own");
        Gpt2TokenizerJson.Write(folder.Combine("tokenizer.json"));
        File.WriteAllText(folder.Combine("tokenizer_config.json"), Gpt2Class);

        Assert.Same(Gpt2Tokenizer.Instance, TokenizerLoader.Load(folder.Path));
    }
}
