using System.Text;
using Appliance.Engine;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>
/// Each tokenizer's token bytes (what structured outputs match against the schema) spell exactly what its encoder
/// read: the bytes of a text's tokens, joined, are the text's UTF-8 (SentencePiece adds its word-boundary space at the
/// start), including tokens that hold only part of a character.
/// </summary>
public sealed class TokenBytesTests
{
    private static readonly string[] Texts =
    [
        """{"name": "Ada", "age": 36, "tags": ["a", "b"]}""",
        "Zoë naïve café, 中文字符 and 🙂🚀 emoji; tab\tand\nnewline",
        "  leading spaces, ünïcödé, ½ and \\u00e9 escapes",
    ];

    public static TheoryData<string> Families => ["llama3", "qwen3", "gemma3", "deepseek_v3"];

    [Theory]
    [MemberData(nameof(Families))]
    public void Tokenizer_json_families(string family) => AssertSpells(LoadedReferenceTokenizers.For(family));

    [Fact]
    public void Gpt2() => AssertSpells(Gpt2Tokenizer.Instance);

    [Theory]
    [InlineData("bpe", true)]
    [InlineData("unigram", true)]
    [InlineData("bpe", false)]
    public void SentencePiece_models(string kind, bool byteFallback) =>
        AssertSpells(SentencePieceTokenizer.Load(SentencePieceModels.Model(kind, byteFallback), addBeginningOfSentence: false), ignoreUnknown: !byteFallback);

    [Fact]
    public void Special_tokens_are_not_text()
    {
        var tokenizer = LoadedReferenceTokenizers.For("llama3");
        var special = tokenizer.Encode("<|begin_of_text|>");

        Assert.Single(special);
        Assert.Null(tokenizer.TokenBytes(special[0]));
    }

    private static void AssertSpells(ITokenizer tokenizer, bool ignoreUnknown = false)
    {
        foreach (var text in Texts)
        {
            var ids = tokenizer.Encode(text);
            var bytes = new List<byte>();
            foreach (var id in ids)
            {
                var token = tokenizer.TokenBytes(id);
                if (token is null && ignoreUnknown)
                {
                    return; // a model without byte fallback has no bytes for characters it never saw
                }

                Assert.True(token is not null, $"token {id} of '{text}' has no bytes");
                bytes.AddRange(token);
            }

            var spelled = Encoding.UTF8.GetString([.. bytes]);
            Assert.True(spelled == text || spelled == " " + text, $"'{spelled}' != '{text}'");
        }
    }
}
