using Appliance.Engine.Output;
using Appliance.Runtime.Onnx.Tokenization;

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
