using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Appliance.Audit.Stores;
using Appliance.Identity;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Audit;

/// <summary>
/// The host as its own process, killed with SIGKILL while serving: after a restart the chain verifies, and every
/// request that received an answer has its accepted record.
/// </summary>
public sealed class AuditCrashTests : IDisposable
{
    private readonly TempFolder _root = new("audit-crash");

    [Fact]
    public async Task A_host_killed_under_load_leaves_a_verifiable_chain_with_every_answered_request_in_it()
    {
        var model = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, model);
        var data = _root.Combine("data");
        var token = DevelopmentIdentity.LoadOrCreate(Path.Combine(data, "identity"))
            .Mint(new DevelopmentTokenRequest("load", ["appliance-user"], "appliance-api", TimeSpan.FromHours(1)), DateTimeOffset.UtcNow);

        var answered = new List<string>();
        int AnsweredCount()
        {
            lock (answered)
            {
                return answered.Count;
            }
        }

        using (var host = await StartHost(model, data))
        {
            using var http = new HttpClient { BaseAddress = host.Address, Timeout = TimeSpan.FromSeconds(30) };
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            using var stop = new CancellationTokenSource();
            var clients = Enumerable.Range(0, 12).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        using var response = await http.PostAsync("/v1/chat/completions", new StringContent(
                            """{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""", Encoding.UTF8, "application/json"));
                        if (response.StatusCode == HttpStatusCode.OK && response.Headers.TryGetValues("X-Request-Id", out var ids))
                        {
                            lock (answered)
                            {
                                answered.Add(ids.Single());
                            }
                        }
                    }
                    catch (HttpRequestException)
                    {
                        return; // the host is gone
                    }
                    catch (TaskCanceledException)
                    {
                        return;
                    }
                }
            })).ToList();

            // Until enough answers are in (a fixed time answered too few on a loaded machine), and at least 3 s of load.
            var loadedUntil = DateTime.UtcNow.AddSeconds(3);
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while ((DateTime.UtcNow < loadedUntil || AnsweredCount() <= 20) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }

            host.Kill(); // SIGKILL: no shutdown, no final checkpoint, transactions cut wherever they were
            await stop.CancelAsync();
            await Task.WhenAll(clients);
        }

        Assert.True(answered.Count > 20, $"only {answered.Count} requests were answered before the kill");

        using (var restarted = await StartHost(model, data))
        {
            using var http = new HttpClient { BaseAddress = restarted.Address };
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            using var after = await http.PostAsync("/v1/chat/completions", new StringContent(
                """{"model":"tiny","messages":[{"role":"user","content":"again"}],"max_tokens":2}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, after.StatusCode); // the chain continues after the crash
            await restarted.StopAsync();
        }

        var database = Path.Combine(data, "audit", "audit.db");
        var (exitCode, output) = await ApplianceCli.RunAsync("audit", "verify", "--db", database, "--public-key", Path.Combine(data, "audit", "checkpoint-key.pub.pem"));
        Assert.True(exitCode == 0, output);

        using var store = SqliteAuditStore.OpenReadOnly(database);
        var accepted = store.Chain(store.Nodes().Single()).Where(e => e.Record.Kind == "request.accepted").Select(e => e.Record.RequestId).ToHashSet();
        Assert.All(answered, id => Assert.Contains(id, accepted));
    }

    public void Dispose() => _root.Dispose();

    private static Task<HostProcess> StartHost(string model, string data) => HostProcess.StartAsync(0,
        $"--Appliance:DataFolder={data}", $"--Models:tiny:Path={model}", "--Models:tiny:IntraOpThreads=1", "--Appliance:BuiltInEmbeddings=false",
        "--Audit:CheckpointEvery=25", "--Logging:LogLevel:Default=Warning");
}
