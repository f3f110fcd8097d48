using Appliance.Grammar;
using Appliance.Prompting;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Runtime.Onnx.Tests.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Constrained;

/// <summary>
/// A forced call in Mistral's format opens with [TOOL_CALLS], one special token of Mistral's vocabularies: the
/// constraint lets the model write it as that token (as it was trained to), not only spelled out in pieces.
/// </summary>
public sealed class ToolMarkerConstraintTests
{
    private const int NemoLogits = 131_072; // Mistral Nemo's vocab_size

    private const string Weather = """{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}""";

    [Fact]
    public void A_forced_Mistral_call_may_open_with_the_marker_token()
    {
        var format = ToolCallFormat.Mistral;
        // Each call loads its own tokenizer: the structured outputs are kept per tokenizer, with the markers first given.
        var marked = Opening(format.Markers);
        var unmarked = Opening(null);
        var marker = marked.Marker;

        Assert.False(float.IsNegativeInfinity(marked.Logits[marker]), "the marker token was refused where the frame writes it");
        Assert.True(float.IsNegativeInfinity(unmarked.Logits[marker]), "without markers, special tokens stay out of constrained output");

        // After the marker token, the frame goes on with the list: "[" and not the marker again.
        marked.State.Accept(marker);
        var logits = new float[NemoLogits];
        marked.State.Restrict(logits, new HashSet<int> { 2 }, 100);
        Assert.True(float.IsNegativeInfinity(logits[marker]));
        Assert.False(float.IsNegativeInfinity(logits[Assert.Single(marked.Tokenizer.Encode("["))]));
        Assert.True(float.IsNegativeInfinity(logits[Assert.Single(marked.Tokenizer.Encode("{"))]));
    }

    [Fact]
    public void A_padded_vocabulary_with_markers_gives_a_constraint_that_never_allows_padding()
    {
        const int QwenLogits = 151_936; // Qwen3's vocab_size, past its tokenizer's last id
        var tokenizer = LoadedReferenceTokenizers.For("qwen3");
        var format = ToolCallFormat.Hermes;
        var (prefix, separator, suffix) = format.Frame;
        var state = StructuredOutputs.For(tokenizer, QwenLogits, format.Markers)
            .ToolCalls(ToolCallLayout.JsonObjects(prefix, separator, suffix, format.ArgumentsKey), [("get_weather", Weather, true, null)], parallel: true)
            .Start();
        var logits = new float[QwenLogits];

        Assert.True(state.Restrict(logits, new HashSet<int> { 151_645 }, 100) > 0);
        Assert.False(float.IsNegativeInfinity(logits[Assert.Single(tokenizer.Encode("<tool_call>"))]));
        Assert.True(float.IsNegativeInfinity(logits[QwenLogits - 1]));
    }

    /// <summary>DeepSeek V3's layout (type, separator, name, fenced arguments) and V3.1's (name, separator, bare arguments, calls chained).</summary>
    [Theory]
    [InlineData("deepseek_v3", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>", 1)]
    [InlineData("deepseek_v3_1", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>", 1)]
    [InlineData("deepseek_v3_1", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Paris\"}<｜tool▁call▁end｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{\"city\": \"Lyon\"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>", 2)]
    public void A_forced_DeepSeek_call_is_written_in_its_own_tokens_with_a_bare_name(string formatName, string call, int calls)
    {
        const int DeepSeekLogits = 129_280; // DeepSeek V3's vocab_size
        const int EndOfSentence = 1;
        var tokenizer = LoadedReferenceTokenizers.For("deepseek_v3");
        var format = ToolCallFormat.Named(formatName)!;
        var (prefix, separator, suffix) = format.Frame;
        var (open, quotedName, beforeArguments, close) = format.CallLayout;
        var state = StructuredOutputs.For(tokenizer, DeepSeekLogits, format.Markers)
            .ToolCalls(new ToolCallLayout(prefix, separator, suffix, open, quotedName, beforeArguments, close), [("get_weather", Weather, true, null)], parallel: true)
            .Start();
        var ends = new HashSet<int> { EndOfSentence };

        // The call as DeepSeek's model writes it, token by token: every token is allowed where it comes, the end only after it.
        var tokens = tokenizer.Encode(call);
        Assert.Equal(128_806, tokens[0]); // the opening marker is its own token
        foreach (var token in tokens)
        {
            var logits = new float[DeepSeekLogits];
            state.Restrict(logits, ends, 100);
            Assert.False(float.IsNegativeInfinity(logits[token]), $"token {token} '{tokenizer.Decode([token])}' refused");
            Assert.True(float.IsNegativeInfinity(logits[EndOfSentence]), "the end was allowed inside the call");
            state.Accept(token);
        }

        Assert.True(state.IsComplete);
        var parsed = format.Parse(tokenizer.Decode(tokens), () => "id");
        Assert.Equal(calls, parsed.Calls.Count);
        Assert.Equal(("get_weather", """{"city": "Paris"}"""), (parsed.Calls[0].Name, parsed.Calls[0].Arguments));

        // A name in quotes, as the JSON formats write it, is not DeepSeek's layout.
        var quoted = StructuredOutputs.For(tokenizer, DeepSeekLogits, format.Markers)
            .ToolCalls(new ToolCallLayout(prefix, separator, suffix, open, quotedName, beforeArguments, close), [("get_weather", Weather, true, null)], parallel: true)
            .Start();
        foreach (var token in tokenizer.Encode(prefix + open))
        {
            quoted.Accept(token);
        }

        var next = new float[DeepSeekLogits];
        quoted.Restrict(next, ends, 100);
        Assert.True(float.IsNegativeInfinity(next[Assert.Single(tokenizer.Encode("\""))]));
    }

    private sealed record Opened(float[] Logits, Engine.Sampling.ITokenConstraintState State, Engine.ITokenizer Tokenizer, int Marker);

    /// <summary>A forced get_weather call's constraint at its first step, with the logits it left allowed.</summary>
    private static Opened Opening(IReadOnlyCollection<string>? markers)
    {
        var tokenizer = LoadedReferenceTokenizers.For("mistral_nemo");
        var marker = Assert.Single(tokenizer.Encode("[TOOL_CALLS]"));
        var (prefix, separator, suffix) = ToolCallFormat.Mistral.Frame;
        var state = StructuredOutputs.For(tokenizer, NemoLogits, markers)
            .ToolCalls(ToolCallLayout.JsonObjects(prefix, separator, suffix, ToolCallFormat.Mistral.ArgumentsKey), [("get_weather", Weather, true, null)], parallel: false)
            .Start();
        var logits = new float[NemoLogits];
        state.Restrict(logits, new HashSet<int> { 2 }, 100);
        return new Opened(logits, state, tokenizer, marker);
    }
}
