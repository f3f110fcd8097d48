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

    /// <summary>A client carrying a development token for a user in the given groups (its team is the first).</summary>
    public HttpClient ClientFor(string user, params string[] groups)
    {
        var token = _app.Services.GetRequiredService<Appliance.Identity.DevelopmentIdentity>().Mint(
            new Appliance.Identity.DevelopmentTokenRequest(user, ["appliance-user"], "appliance-api", TimeSpan.FromHours(1), GroupList: groups), DateTimeOffset.UtcNow);
        var client = new HttpClient { BaseAddress = _http.BaseAddress, Timeout = _http.Timeout };
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>One streamed request of <paramref name="maxTokens"/> tokens from <paramref name="client"/>: its time to first token in seconds.</summary>
    public async Task<double> TimeToFirstTokenAsync(HttpClient client, int seed, int maxTokens)
    {
        var clock = Stopwatch.StartNew();
        var (_, ttft) = await StreamAsync(client, seed, clock, maxTokens);
        return ttft;
    }

    /// <summary>Streams <paramref name="maxTokens"/> tokens (EOS ignored) and returns how many came.</summary>
    public async Task<int> StreamTokensAsync(HttpClient client, int seed, int maxTokens) =>
        (await StreamAsync(client, seed, Stopwatch.StartNew(), maxTokens)).Tokens;

    public async Task<HttpRound> RoundAsync(int clients)
    {
        var clock = Stopwatch.StartNew();
        var results = await Task.WhenAll(Enumerable.Range(0, clients).Select(i => StreamAsync(_http, i, clock, _options.NewTokens)));
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

    private async Task<(int Tokens, double Ttft)> StreamAsync(HttpClient http, int client, Stopwatch clock, int maxTokens)
    {
        // Token ids as the prompt: the same prompts as the engine benchmark, through the legacy completions API.
        var body = JsonSerializer.Serialize(new
        {
            model = "bench",
            prompt = BenchModels.Prompt(client, _options.PromptTokens),
            max_tokens = maxTokens,
            temperature = 0,
            ignore_eos = true,
            stream = true,
            stream_options = new { include_usage = true },
        });
        var start = clock.Elapsed.TotalSeconds;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        double? first = null;
        var tokens = 0;
        while (await reader.ReadLineAsync() is { } line)
        {
            // Only the chunks that matter are parsed: the driver shares the machine with the server it measures.
            if (!line.StartsWith("data: {", StringComparison.Ordinal) || (first is not null && !line.Contains("\"usage\":{", StringComparison.Ordinal)))
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
