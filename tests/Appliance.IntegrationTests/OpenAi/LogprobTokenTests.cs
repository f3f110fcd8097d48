using System.Text;
using Appliance.Api.OpenAi;
using Appliance.Runtime.Onnx.Tokenization;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// Logprobs' bytes let a client put the text back together token by token; a byte-level tokenizer splits emoji and
/// CJK characters across tokens, each of which decodes to U+FFFD alone.
/// </summary>
public sealed class LogprobTokenTests
{
    [Fact]
    public void Tokens_that_hold_part_of_a_character_give_their_own_bytes()
    {
        const string Text = "日本語 😀 café";
        var ids = Gpt2Tokenizer.Instance.Encode(Text);
        var tokens = ids.Select(id => OpenAiJson.Token(Gpt2Tokenizer.Instance, id)).ToList();

        Assert.Equal(Encoding.UTF8.GetBytes(Text), tokens.SelectMany(t => t.Bytes).ToArray());
        var partial = tokens.Where(t => t.Token.StartsWith("bytes:", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(partial);
        Assert.All(partial, t => Assert.Equal("bytes:" + string.Concat(t.Bytes.Select(b => $"\\x{b:x2}")), t.Token));
        Assert.DoesNotContain(tokens, t => t.Token.Contains('\uFFFD', StringComparison.Ordinal));
        Assert.Contains(tokens, t => t.Token == " caf" || t.Token == "é" || t.Token.EndsWith('é')); // whole characters stay text
    }
}
