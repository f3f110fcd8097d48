using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// Templates that insist on alternating roles (Mistral's and Gemma's raise an exception otherwise) under chat
/// completions, which OpenAI answers for two user turns in a row: a chat UI that dropped a failed answer sends them.
/// </summary>
public sealed class StrictTemplateTests : IDisposable
{
    private const string Template = """
        {%- for message in messages -%}
        {%- if (message.role == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif -%}
        <|{{ message.role }}|>{{ message.content }}
        {%- endfor -%}
        {%- if add_generation_prompt %}<|assistant|>{% endif -%}
        """;

    private readonly TempFolder _root = new("strict-template");

    [Fact]
    public async Task Consecutive_turns_of_one_role_are_joined_when_the_template_insists_on_alternation()
    {
        var model = _root.Combine("strict");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, model);
        File.WriteAllText(Path.Combine(model, "chat_template.jinja"), Template);
        ModelManifest.Create(model);
        await using var running = await RunningAppliance.StartAsync($"--Models:strict:Path={model}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=Warning");
        await running.WaitUntilReadyAsync();

        var twice = await PromptTokensAsync(running, """[{"role":"user","content":"hello there"},{"role":"user","content":"are you there"}]""");
        var once = await PromptTokensAsync(running, """[{"role":"user","content":"hello there\n\nare you there"}]""");
        Assert.Equal(once, twice); // one turn, as if sent so

        // Text parts are lines of their own, not glued into one word.
        var parts = await PromptTokensAsync(running, """[{"role":"user","content":[{"type":"text","text":"hello there"},{"type":"text","text":"are you there"}]}]""");
        Assert.Equal(await PromptTokensAsync(running, """[{"role":"user","content":"hello there\nare you there"}]"""), parts);

        // A conversation the template refuses for another reason is still the caller's to fix.
        using var refused = await PostAsync(running, """[{"role":"assistant","content":"hi"},{"role":"user","content":"hello"}]""");
        var error = await refused.Content.ReadAsStringAsync();
        Assert.True(refused.StatusCode == HttpStatusCode.BadRequest, error);
        Assert.Contains("invalid_conversation", error, StringComparison.Ordinal);
        Assert.Contains("Conversation roles must alternate", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Parts_are_lines_and_joined_turns_paragraphs_as_the_model_reads_them()
    {
        var http = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        http.Request.Body = new MemoryStream(Encoding.UTF8.GetBytes("""
            {"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":"Answer in French."},
             {"role":"user","content":[{"type":"text","text":"Translate:"},{"type":"text","text":"Good morning"}]},
             {"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
             {"role":"tool","tool_call_id":"c1","content":"one"},{"role":"tool","tool_call_id":"c1","content":"two"}]}
            """));
        using var fields = await Appliance.Api.OpenAi.JsonFields.ReadAsync(http.Request, 1 << 20, CancellationToken.None);
        var messages = Appliance.Api.OpenAi.ChatCompletionRequest.Read(fields, new Appliance.Api.OpenAi.ApiLimits()).Messages;
        Assert.Equal("Translate:\nGood morning", messages[2].Content);

        var joined = Appliance.Api.OpenAi.ConsecutiveTurns.Join(messages);
        Assert.Equal(["system", "user", "assistant", "tool", "tool"], joined.Select(m => m.Role)); // tool results stay one per call
        Assert.Equal("Be brief.\n\nAnswer in French.", joined[0].Content); // developer is system, as OpenAI reads it
    }

    public void Dispose() => _root.Dispose();

    private static async Task<int> PromptTokensAsync(RunningAppliance running, string messages)
    {
        using var response = await PostAsync(running, messages);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
    }

    private static Task<HttpResponseMessage> PostAsync(RunningAppliance running, string messages) =>
        running.Http.PostAsync("/v1/chat/completions", new StringContent($$"""{"model":"strict","max_tokens":1,"messages":{{messages}}}""", Encoding.UTF8, "application/json"));
}
