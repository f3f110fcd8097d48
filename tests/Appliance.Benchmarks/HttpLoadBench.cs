using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Appliance.Host;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Appliance.Benchmarks;

/// <summary>One round of the HTTP load: aggregate throughput and every client's time to first token.</summary>
internal sealed record HttpRound(double TokensPerSecond, IReadOnlyList<double> TtftSeconds);

/// <summary>
/// The real host on a loopback port, driven by concurrent streaming clients over HTTP (SSE), prompts of the same
/// length as the engine benchmark's.
/// </summary>
internal sealed class HttpLoadBench : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HttpClient _http;
    private readonly BenchOptions _options;

    private readonly string _dataFolder;

    private HttpLoadBench(WebApplication app, HttpClient http, BenchOptions options, string dataFolder)
    {
        _app = app;
        _http = http;
        _options = options;
        _dataFolder = dataFolder;
    }

    public static async Task<HttpLoadBench> StartAsync(string folder, BenchOptions options, params string[] extra)
    {
        var data = Path.Combine(Path.GetTempPath(), "appliance-bench-data", Guid.NewGuid().ToString("N")); // its own audit chain
        var app = ApplianceApp.Create(
        [
            .. extra,
            "--urls=http://127.0.0.1:0", "--environment=Development", $"--Models:bench:Path={folder}", "--Models:bench:MaxBatchSize=8",
            "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:Microsoft.Extensions.Diagnostics.HealthChecks=None",
            $"--Appliance:DataFolder={data}",
        ]);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        var http = new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(10) };
        var token = app.Services.GetRequiredService<Appliance.Identity.DevelopmentIdentity>()
            .Mint(new Appliance.Identity.DevelopmentTokenRequest("bench", ["appliance-user"], "appliance-api", TimeSpan.FromHours(1)), DateTimeOffset.UtcNow);
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        while ((await http.GetAsync("/health/ready")).StatusCode != System.Net.HttpStatusCode.OK)
        {
            await Task.Delay(50);
        }

        return new HttpLoadBench(app, http, options, data);
    }

    public async Task<HttpRound> RoundAsync(int clients)
    {
        var clock = Stopwatch.StartNew();
        var results = await Task.WhenAll(Enumerable.Range(0, clients).Select(i => StreamAsync(i, clock)));
        return new HttpRound(results.Sum(r => r.Tokens) / clock.Elapsed.TotalSeconds, [.. results.Select(r => r.Ttft)]);
    }

    /// <summary>Short requests (one token each, not streamed) from concurrent clients for a while: requests per second.</summary>
    public async Task<double> ShortRequestsPerSecondAsync(int clients, TimeSpan duration)
    {
        var clock = Stopwatch.StartNew();
        var counts = await Task.WhenAll(Enumerable.Range(0, clients).Select(async client =>
        {
            var count = 0;
            var body = JsonSerializer.Serialize(new { model = "bench", prompt = BenchModels.Prompt(client, 16), max_tokens = 1, temperature = 0 });
            while (clock.Elapsed < duration)
            {
                using var response = await _http.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
                response.EnsureSuccessStatusCode();
                count++;
            }

            return count;
        }));
        return counts.Sum() / clock.Elapsed.TotalSeconds;
    }

    private async Task<(int Tokens, double Ttft)> StreamAsync(int client, Stopwatch clock)
    {
        // Token ids as the prompt: the same prompts as the engine benchmark, through the legacy completions API.
        var body = JsonSerializer.Serialize(new
        {
            model = "bench",
            prompt = BenchModels.Prompt(client, _options.PromptTokens),
            max_tokens = _options.NewTokens,
            temperature = 0,
            stream = true,
            stream_options = new { include_usage = true },
        });
        var start = clock.Elapsed.TotalSeconds;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        double? first = null;
        var tokens = 0;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal))
            {
                continue;
            }

            using var chunk = JsonDocument.Parse(line.AsMemory(6));
            if (first is null && chunk.RootElement.GetProperty("choices").GetArrayLength() > 0)
            {
                first = clock.Elapsed.TotalSeconds;
            }

            if (chunk.RootElement.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
            {
                tokens = usage.GetProperty("completion_tokens").GetInt32();
            }
        }

        return (tokens, (first ?? clock.Elapsed.TotalSeconds) - start);
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(_dataFolder, recursive: true);
    }
}
