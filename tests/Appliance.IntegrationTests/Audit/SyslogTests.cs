using System.Net;
using System.Net.Sockets;
using System.Text;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Audit;

/// <summary>Audit entries reach a SIEM as RFC 5424 syslog, over TCP (octet counting) and UDP, checked with local listeners.</summary>
public sealed class SyslogTests : IDisposable
{
    private readonly TempFolder _root = new("syslog");

    [Fact]
    public async Task Entries_are_forwarded_over_tcp_with_octet_counting()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var messages = new List<string>();
        using var stop = new CancellationTokenSource();
        var receiving = ReceiveTcpAsync(listener, messages, stop.Token);

        await using var running = await StartAsync($"tcp://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}");
        await Exercise(running);
        var completed = await WaitFor(messages, m => m.Contains(" request.completed ", StringComparison.Ordinal) && m.Contains("user=\"ada\"", StringComparison.Ordinal));
        var refused = await WaitFor(messages, m => m.Contains(" request.refused ", StringComparison.Ordinal));

        Assert.StartsWith("<110>1 ", completed, StringComparison.Ordinal); // facility 13 (log audit), severity 6 (informational)
        Assert.StartsWith("<108>1 ", refused, StringComparison.Ordinal); // severity 4 (warning)
        Assert.Matches(@"^<110>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z \S+ appliance - request\.completed \[audit@32473 seq=""\d+"" ", completed);
        Assert.Contains("model=\"tiny\"", completed, StringComparison.Ordinal);
        Assert.Contains("] \uFEFF{\"seq\":", completed, StringComparison.Ordinal); // the whole entry, hash included, as the message
        await stop.CancelAsync();
        await receiving;
    }

    [Fact]
    public async Task Entries_are_forwarded_over_udp_one_per_datagram()
    {
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var messages = new List<string>();
        using var stop = new CancellationTokenSource();
        var receiving = Task.Run(async () =>
        {
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    var datagram = await udp.ReceiveAsync(stop.Token);
                    lock (messages)
                    {
                        messages.Add(Encoding.UTF8.GetString(datagram.Buffer));
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        });

        await using var running = await StartAsync($"udp://127.0.0.1:{((IPEndPoint)udp.Client.LocalEndPoint!).Port}");
        await Exercise(running);
        var completed = await WaitFor(messages, m => m.Contains(" request.completed ", StringComparison.Ordinal) && m.Contains("user=\"ada\"", StringComparison.Ordinal));
        Assert.StartsWith("<110>1 ", completed, StringComparison.Ordinal);
        await stop.CancelAsync();
        await receiving;
    }

    public void Dispose() => _root.Dispose();

    private static async Task Exercise(RunningAppliance running)
    {
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        using var anonymous = running.ClientWith(null);
        Assert.Equal(HttpStatusCode.OK, (await ada.PostAsync("/v1/chat/completions", Chat())).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync("/v1/chat/completions", Chat())).StatusCode);
    }

    private static StringContent Chat() =>
        new("""{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""", Encoding.UTF8, "application/json");

    private async Task<RunningAppliance> StartAsync(string target)
    {
        var model = _root.Combine("tiny");
        if (!Directory.Exists(model))
        {
            SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, model);
        }

        var running = await RunningAppliance.StartAsync($"--Models:tiny:Path={model}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None",
            $"--Audit:Syslog:Target={target}", "--Audit:Syslog:PollInterval=00:00:00.100");
        await running.WaitUntilReadyAsync();
        return running;
    }

    private static async Task<string> WaitFor(List<string> messages, Func<string, bool> match)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            lock (messages)
            {
                if (messages.FirstOrDefault(match) is { } found)
                {
                    return found;
                }
            }

            await Task.Delay(50);
        }

        lock (messages)
        {
            throw new TimeoutException($"no matching syslog message among {messages.Count}: {string.Join("\n", messages.Take(5))}");
        }
    }

    /// <summary>Reads RFC 6587 octet-counted frames ("LENGTH SP MESSAGE") from every connection.</summary>
    private static Task ReceiveTcpAsync(TcpListener listener, List<string> messages, CancellationToken stop) => Task.Run(async () =>
    {
        try
        {
            using var client = await listener.AcceptTcpClientAsync(stop);
            using var closing = stop.Register(client.Dispose); // unblocks the reads below when the test ends
            var stream = client.GetStream();
            while (!stop.IsCancellationRequested)
            {
                var length = 0;
                for (var b = stream.ReadByte(); b != ' '; b = stream.ReadByte())
                {
                    if (b < 0)
                    {
                        return;
                    }

                    length = length * 10 + (b - '0');
                }

                var buffer = new byte[length];
                await stream.ReadExactlyAsync(buffer, stop);
                lock (messages)
                {
                    messages.Add(Encoding.UTF8.GetString(buffer));
                }
            }
        }
        catch (Exception exception) when (exception is OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
    });
}
