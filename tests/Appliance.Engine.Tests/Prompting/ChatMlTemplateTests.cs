using Appliance.Prompting;

namespace Appliance.Engine.Tests.Prompting;

public sealed class ChatMlTemplateTests
{
    [Fact]
    public void Renders_each_turn_and_opens_the_assistant_turn()
    {
        var prompt = new ChatMlTemplate().Render([new ChatMessage("system", "Be brief."), new ChatMessage("user", "Hi")]);
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", prompt);
    }

    [Fact]
    public void Without_generation_prompt_ends_after_the_last_turn()
    {
        var prompt = new ChatMlTemplate().Render([new ChatMessage("user", "Hi")], addGenerationPrompt: false);
        Assert.EndsWith("Hi<|im_end|>\n", prompt, StringComparison.Ordinal);
    }
}
