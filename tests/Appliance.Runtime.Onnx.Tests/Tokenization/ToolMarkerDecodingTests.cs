using Appliance.Engine.Output;
using Appliance.Prompting;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Tokenization;

/// <summary>
/// A call's marker is a special token in some vocabularies (Mistral's [TOOL_CALLS], Llama's &lt;|python_tag|&gt;),
/// plain added text in others (Qwen's &lt;tool_call&gt;): either way the streamed text keeps it, so the format the
/// real template selects reads the call.
/// </summary>
public sealed class ToolMarkerDecodingTests
{
    [Theory]
    [InlineData("mistral_nemo", "[TOOL_CALLS]", "[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]")]
    [InlineData("llama3_2", "<|python_tag|>", "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}")]
    [InlineData("deepseek_v3", "<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>")]
    [InlineData("qwen3", "<tool_call>", "\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>")]
    [InlineData("qwen2_5", "<tool_call>", "\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>")]
    public void A_call_written_by_the_model_reaches_its_parser_whole(string family, string marker, string call)
    {
        var tokenizer = LoadedReferenceTokenizers.For(family);
        Assert.Single(tokenizer.Encode(marker)); // the model writes the marker as its one token, not spelled out
        var output = marker + call;
        var ids = tokenizer.Encode(output);

        var detokenizer = new IncrementalDetokenizer(tokenizer);
        var streamed = string.Concat(ids.Select(detokenizer.Push)) + detokenizer.Flush();
        Assert.Equal(output, streamed);

        var parsed = ToolCallFormat.FromTemplate(ReferenceChatTemplates.ForFamily(family).Template).Parse(streamed, () => "id");
        var read = Assert.Single(parsed.Calls);
        Assert.Equal(("get_weather", """{"city": "Paris"}"""), (read.Name, read.Arguments));
        Assert.Null(parsed.Content);
    }
}
