using System.Text;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Host;

/// <summary>Graceful shutdown: running streams finish within the drain time, and are cancelled cleanly after it.</summary>
public sealed class DrainTests : IDisposable
{
    private readonly TempFolder _root = new("appliance-drain");

    [Fact]
    public async Task A_stream_running_at_shutdown_finishes_within_the_drain_time()
    {
        var raw = await StreamThroughShutdown(drain: "00:00:30");
        Assert.Contains("\"finish_reason\":\"length\"", raw, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]\n\n", raw, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stream_still_running_after_the_drain_time_is_cut_off()
    {
        var raw = await StreamThroughShutdown(drain: "00:00:00");
        Assert.DoesNotContain("data: [DONE]", raw, StringComparison.Ordinal);
        Assert.DoesNotContain("\"finish_reason\":\"length\"", raw, StringComparison.Ordinal);
    }

    public void Dispose() => _root.Dispose();

    private async Task<string> StreamThroughShutdown(string drain)
    {
        var folder = _root.Combine("model");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { ContextLength = 4096 }, folder);
        var running = await RunningAppliance.StartAsync(
            $"--Models:m:Path={folder}", $"--Appliance:DrainTimeout={drain}", "--Limits:MaxTokens=4000",
            "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None");
        await running.WaitUntilReadyAsync();

        var body = """{"model":"m","messages":[{"role":"user","content":"Hi"}],"stream":true,"max_tokens":3000,"ignore_eos":true}""";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await running.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var stream = await response.Content.ReadAsStreamAsync();
        var text = new StringBuilder();
        var buffer = new byte[4096];
        text.Append(Encoding.UTF8.GetString(buffer, 0, await stream.ReadAsync(buffer)));

        // Stop while the 3000-token answer is still being generated, then read what the client gets.
        var stopping = running.App.StopAsync();
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                text.Append(Encoding.UTF8.GetString(buffer, 0, read));
            }
        }
        catch (Exception exception) when (exception is IOException or HttpRequestException)
        {
            // A stream cut off at the end of the drain time ends with the connection closing.
        }

        await stopping;
        await running.DisposeAsync();
        return text.ToString();
    }
}
