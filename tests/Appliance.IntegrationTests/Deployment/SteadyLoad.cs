using System.Collections.Concurrent;
using System.Text;

namespace Appliance.IntegrationTests.Deployment;

/// <summary>
/// Clients streaming chat answers through the load balancer back to back until stopped, counting every request that
/// did not end in a complete answer (status 200 and the stream's [DONE]). Each client pauses between requests: a steady
/// caller rather than a flood, so that the playbook running beside it gets its share of the two cores (with a quarter
/// of a second, the nodes answering took a whole core and the playbooks ran a third longer). Four clients still keep a
/// few requests a second going through every drain and restart.
/// </summary>
internal sealed class SteadyLoad : IAsyncDisposable
{
    private static readonly TimeSpan Pause = TimeSpan.FromMilliseconds(750);

    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<string> _failures = new();
    private readonly List<Task> _workers;
    private int _completed;

    private readonly Func<Task<string>> _token;

    public SteadyLoad(Func<HttpClient> client, Func<Task<string>> token, string model, int workers)
    {
        _token = token;
        _workers = [.. Enumerable.Range(0, workers).Select(_ => Task.Run(() => Work(client(), model)))];
    }

    public int Completed => _completed;

    /// <summary>The current token; a realm that cannot issue one is a failed request (the worker goes on), not a worker that ends unnoticed.</summary>
    private async Task<string> TokenAsync()
    {
        try
        {
            return await _token();
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            throw new HttpRequestException($"no token: {exception.Message}", exception);
        }
    }

    public IReadOnlyCollection<string> Failures => _failures;

    /// <summary>Waits until <paramref name="answers"/> answers have completed (the clients have their tokens and connections), at most <paramref name="timeout"/>.</summary>
    public async Task WarmAsync(int answers, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (Volatile.Read(ref _completed) < answers && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_workers);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await StopAsync();
        }

        _stop.Dispose();
    }

    private async Task Work(HttpClient http, string model)
    {
        using (http)
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
                    {
                        Content = new StringContent(
                            $$"""{"model":"{{model}}","messages":[{"role":"user","content":"steady"}],"max_tokens":24,"ignore_eos":true,"stream":true}""",
                            Encoding.UTF8, "application/json"),
                    };
                    request.Headers.Authorization = new("Bearer", await TokenAsync());
                    using var response = await http.SendAsync(request);
                    var body = await response.Content.ReadAsStringAsync();
                    if ((int)response.StatusCode == 200 && body.TrimEnd().EndsWith("data: [DONE]", StringComparison.Ordinal))
                    {
                        Interlocked.Increment(ref _completed);
                    }
                    else
                    {
                        _failures.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {(int)response.StatusCode}: {body[..Math.Min(body.Length, 300)]}");
                    }
                }
                catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException or IOException)
                {
                    _failures.Enqueue($"{DateTime.UtcNow:HH:mm:ss.fff} {exception.GetType().Name}: {exception.Message}");
                }

                try
                {
                    await Task.Delay(Pause, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
    }
}
