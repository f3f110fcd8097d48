using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// Most SDKs and chat UIs send no max_tokens: as in OpenAI's API the answer may then use what the context leaves, up
/// to Limits:MaxTokens, unless the administrator set a model default. It was cut at 256 tokens.
/// </summary>
public sealed class DefaultMaxTokensTests : IDisposable
{
    private readonly TempFolder _root = new("default-max-tokens");

    [Fact]
    public async Task A_request_naming_no_max_tokens_may_use_the_appliance_limit_or_the_administrators_default()
    {
        var model = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { ContextLength = 1024 }, model);
        var small = _root.Combine("small-context");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { ContextLength = 128 }, small);
        await using var running = await RunningAppliance.StartAsync($"--Models:open:Path={model}", $"--Models:capped:Path={model}", "--Models:capped:DefaultMaxTokens=5",
            $"--Models:small:Path={small}",
            "--Limits:MaxTokens=300", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=Warning");
        await running.WaitUntilReadyAsync();
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));

        Assert.Equal(300, await CompletionTokensAsync(ada, "/v1/chat/completions", """{"model":"open","messages":[{"role":"user","content":"hi"}],"ignore_eos":true}"""));
        Assert.Equal(16, await CompletionTokensAsync(ada, "/v1/completions", """{"model":"open","prompt":"Once upon a time","ignore_eos":true}""")); // OpenAI's legacy default
        // A client set to the model's advertised maximum gets the appliance's ceiling, not a 400.
        Assert.Equal(300, await CompletionTokensAsync(ada, "/v1/chat/completions", """{"model":"open","messages":[{"role":"user","content":"hi"}],"max_tokens":32768,"ignore_eos":true}"""));
        Assert.Equal(5, await CompletionTokensAsync(ada, "/v1/chat/completions", """{"model":"capped","messages":[{"role":"user","content":"hi"}],"ignore_eos":true}"""));
        // The administrator's default holds for legacy completions too (it was 16 whatever the setting said).
        Assert.Equal(5, await CompletionTokensAsync(ada, "/v1/completions", """{"model":"capped","prompt":"Once upon a time","ignore_eos":true}"""));

        // With a context smaller than the limit, that ceiling is what the context leaves, on every endpoint; a value
        // within the limit is what the client meant, and too long for the context is still a 400.
        const string Chat = """{"model":"small","messages":[{"role":"user","content":"hi"}],"max_tokens":32768,"ignore_eos":true}""";
        var (prompt, completion) = await UsageAsync(ada, "/v1/chat/completions", Chat);
        Assert.Equal(128, prompt + completion);
        (prompt, completion) = await UsageAsync(ada, "/v1/completions", """{"model":"small","prompt":"Once upon a time","max_tokens":32768,"ignore_eos":true}""");
        Assert.Equal(128, prompt + completion);
        using (var response = await ada.PostAsync("/v1/responses", new StringContent(
            """{"model":"small","input":"hi","max_output_tokens":32768}""", Encoding.UTF8, "application/json")))
        {
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        }

        // Exactly the limit is a ceiling too (the client cannot tell the limit from a cap).
        (prompt, completion) = await UsageAsync(ada, "/v1/chat/completions", Chat.Replace("32768", "300", StringComparison.Ordinal));
        Assert.Equal(128, prompt + completion);

        using (var tooLong = await ada.PostAsync("/v1/chat/completions", new StringContent(Chat.Replace("32768", "200", StringComparison.Ordinal), Encoding.UTF8, "application/json")))
        {
            var text = await tooLong.Content.ReadAsStringAsync();
            Assert.True(tooLong.StatusCode == HttpStatusCode.BadRequest && text.Contains("context_length_exceeded", StringComparison.Ordinal), text);
        }

        using var models = JsonDocument.Parse(await ada.GetStringAsync("/v1/models/open"));
        Assert.Equal(JsonValueKind.Null, models.RootElement.GetProperty("sampling_defaults").GetProperty("max_tokens").ValueKind);
    }

    private static async Task<int> CompletionTokensAsync(HttpClient client, string path, string body) => (await UsageAsync(client, path, body)).Completion;

    private static async Task<(int Prompt, int Completion)> UsageAsync(HttpClient client, string path, string body)
    {
        using var response = await client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        var usage = json.RootElement.GetProperty("usage");
        return (usage.GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("completion_tokens").GetInt32());
    }

    public void Dispose() => _root.Dispose();
}
