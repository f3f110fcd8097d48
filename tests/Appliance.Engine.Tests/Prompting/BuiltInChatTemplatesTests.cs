using Appliance.Prompting;
using Appliance.Prompting.Jinja;

namespace Appliance.Engine.Tests.Prompting;

public sealed class BuiltInChatTemplatesTests
{
    private static readonly ChatMessage[] Conversation =
        [new("system", "Be brief."), new("user", "Hi"), new("assistant", "Hello."), new("user", "Bye")];

    [Fact]
    public void Llama3_wraps_each_turn_in_headers()
    {
        Assert.Equal(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>" +
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            BuiltInChatTemplates.Create("llama3").Render(Conversation));
    }

    [Fact]
    public void Llama2_folds_the_system_message_into_the_first_instruction()
    {
        Assert.Equal(
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]",
            BuiltInChatTemplates.Create("llama2").Render(Conversation));
        Assert.Throws<ChatTemplateRejectedException>(() =>
            BuiltInChatTemplates.Create("llama2").Render([new ChatMessage("user", "a"), new ChatMessage("system", "b")]));
    }

    [Fact]
    public void Phi3_marks_roles_and_ends_turns()
    {
        Assert.Equal(
            "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello.<|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\n",
            BuiltInChatTemplates.Create("phi3").Render(Conversation));
    }

    [Fact]
    public void An_unknown_name_is_refused_listing_the_known_ones()
    {
        var error = Assert.Throws<ChatTemplateException>(() => BuiltInChatTemplates.Create("vicuna"));
        Assert.Contains("chatml, llama3, llama2, phi3", error.Message, StringComparison.Ordinal);
    }
}
