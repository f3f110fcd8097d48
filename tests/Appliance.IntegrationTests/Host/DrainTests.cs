using System.Text;
using Appliance.Host;
using Appliance.Runtime.Onnx.Synthetic;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Appliance.IntegrationTests.Host;

/// <summary>Graceful shutdown: running streams finish within the drain time, and are cancelled cleanly after it.</summary>
public sealed class DrainTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "appliance-it", Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task A_stream_running_at_shutdown_finishes_within_the_drain_time()
    {
        var raw = await StreamThroughShutdown(drain: "00:00:30");
        Assert.Contains("\"finish_reason\":\"length\"", raw, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]\n\n", raw, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stream_still_running_after_the_drain_time_is_cancelled_with_an_error_event()
    {
        var raw = await StreamThroughShutdown(drain: "00:00:00");
        Assert.DoesNotContain("data: [DONE]", raw, StringComparison.Ordinal);
        Assert.DoesNotContain("\"finish_reason\":\"length\"", raw, StringComparison.Ordinal);
    }

    private async Task<string> StreamThroughShutdown(string drain)
    {
        var folder = Path.Combine(_root, "model");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { ContextLength = 4096 }, folder);
        var app = ApplianceApp.Create(
        [
            "--urls=http://127.0.0.1:0", $"--Models:m:Path={folder}", $"--Appliance:DrainTimeout={drain}", "--Limits:MaxTokens=4000",
            "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None",
        ]);
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single()) };
        while ((await http.GetAsync("/health/ready")).StatusCode != System.Net.HttpStatusCode.OK)
        {
            await Task.Delay(50);
        }

        var body = """{"model":"m","messages":[{"role":"user","content":"Hi"}],"stream":true,"max_tokens":3000}""";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var stream = await response.Content.ReadAsStreamAsync();
        var text = new StringBuilder();
        var buffer = new byte[4096];
        text.Append(Encoding.UTF8.GetString(buffer, 0, await stream.ReadAsync(buffer)));

        var stopping = app.StopAsync();
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer)) > 0)
            {
                text.Append(Encoding.UTF8.GetString(buffer, 0, read));
            }
        }
        catch (IOException)
        {
            // A cancelled stream may end with the connection closing.
        }
        catch (HttpRequestException)
        {
            // Likewise.
        }

        await stopping;
        await app.DisposeAsync();
        return text.ToString();
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // Leftovers in the temp folder are harmless.
        }
    }
}
