using Appliance.Engine.Output;
using Appliance.Tests.Common;

namespace Appliance.Engine.Tests.Output;

public sealed class IncrementalDetokenizerTests
{
    [Theory]
    [InlineData("héllo wörld")]
    [InlineData("日本語のテキスト")]
    [InlineData("emoji 👋🏽 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢")]
    public void Multi_byte_characters_split_over_tokens_are_emitted_whole(string text)
    {
        var tokenizer = new ByteTokenizer();
        var detokenizer = new IncrementalDetokenizer(tokenizer);
        var pieces = tokenizer.Encode(text).Select(detokenizer.Push).ToList();

        Assert.Equal(text, string.Concat(pieces) + detokenizer.Flush());
        Assert.All(pieces, piece => Assert.DoesNotContain('\uFFFD', piece));
        Assert.All(pieces, piece => Assert.False(piece.Length > 0 && char.IsHighSurrogate(piece[^1]), "ends inside a surrogate pair"));
    }

    [Fact]
    public void Bytes_that_never_form_a_character_are_flushed_as_replacement()
    {
        var detokenizer = new IncrementalDetokenizer(new ByteTokenizer());
        Assert.Equal(string.Empty, detokenizer.Push(0xE6));
        Assert.Equal("\uFFFD", detokenizer.Flush());
    }
}
