using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Prompting;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// A chat request end to end with a real model family's tokenizer and chat template, paired with a synthetic decoder
/// of the family's vocabulary size: the prompt the appliance builds has exactly as many tokens as Jinja2's rendering
/// tokenised by the reference tokenizer, and a plain completion prompt as many as the reference with its special tokens.
/// </summary>
public sealed class ModelFamilyTests : IDisposable
{
    private readonly TempFolder _root = new("model-family");

    [Theory]
    [InlineData("qwen3", "<|im_end|>")]
    [InlineData("qwen2_5", "<|im_end|>")]
    [InlineData("llama3", "<|eot_id|>")]
    [InlineData("gemma3", "<end_of_turn>")]
    [InlineData("deepseek_v3", "<｜end▁of▁sentence｜>")]
    public async Task A_chat_uses_the_family_s_template_and_tokenizer(string family, string endOfTurn)
    {
        var folder = WriteFamilyModel(_root, family, endOfTurn);
        await using var running = await RunningAppliance.StartAsync(
            $"--Models:{family}:Path={folder}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=Warning");
        await running.WaitUntilReadyAsync();

        ChatMessage[] messages = [new("system", "You are terse."), new("user", "Wie spät ist es? 🕰️")];
        var body = JsonSerializer.Serialize(new { model = family, messages = messages.Select(m => new { role = m.Role, content = m.Content }), max_tokens = 4 });
        using var response = await running.Http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);

        var (template, bos, eos) = ReferenceChatTemplates.ForFamily(family);
        var rendered = ReferenceChatTemplates.Render(template, messages, bos, eos, addGenerationPrompt: true, DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        var expectedTokens = ReferenceTokenizers.Encode(family, [rendered])[0].Length;
        Assert.Equal(expectedTokens, JsonDocument.Parse(text).RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        // A plain completion prompt gets what the tokenizer's post-processor adds (the BOS of Llama 3, Gemma 3 and
        // DeepSeek V3), as transformers and vLLM encode it.
        const string Prompt = "Wie spät ist es? 🕰️";
        var completionBody = JsonSerializer.Serialize(new { model = family, prompt = Prompt, max_tokens = 2 });
        using var completion = await running.Http.PostAsync("/v1/completions", new StringContent(completionBody, Encoding.UTF8, "application/json"));
        var completionText = await completion.Content.ReadAsStringAsync();
        Assert.True(completion.StatusCode == HttpStatusCode.OK, completionText);
        Assert.Equal(ReferenceTokenizers.Encode(family, [Prompt], addSpecialTokens: true)[0].Length,
            JsonDocument.Parse(completionText).RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    public void Dispose() => _root.Dispose();

    /// <summary>A synthetic decoder sized to the family's vocabulary, with the family's real tokenizer files.</summary>
    internal static string WriteFamilyModel(TempFolder root, string family, string endOfTurn)
    {
        var source = ReferenceTokenizers.ModelFolder(family);
        using var tokenizer = JsonDocument.Parse(File.ReadAllText(Path.Combine(source, "tokenizer.json")));
        var vocabulary = tokenizer.RootElement.GetProperty("model").GetProperty("vocab").EnumerateObject().Select(p => p.Value.GetInt32())
            .Concat(tokenizer.RootElement.GetProperty("added_tokens").EnumerateArray().Select(t => t.GetProperty("id").GetInt32()))
            .Max() + 1;
        var endId = tokenizer.RootElement.GetProperty("added_tokens").EnumerateArray().First(t => t.GetProperty("content").GetString() == endOfTurn).GetProperty("id").GetInt32();

        var folder = root.Combine(family);
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { VocabularySize = vocabulary, EosTokenId = endId, ContextLength = 512 }, folder);
        File.Copy(Path.Combine(source, "tokenizer.json"), Path.Combine(folder, "tokenizer.json"), overwrite: true);
        File.Copy(Path.Combine(source, "tokenizer_config.json"), Path.Combine(folder, "tokenizer_config.json"), overwrite: true);
        ModelManifest.Create(folder);
        return folder;
    }
}
