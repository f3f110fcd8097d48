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
    public async Task Over_relp_no_entry_is_lost_when_the_collector_restarts_while_entries_are_being_forwarded()
    {
        // Plain TCP cannot tell what sat in the socket's buffers when the collector went away; RELP acknowledges each
        // entry, and the cursor moves only past acknowledged ones.
        using var collector = new RsyslogRelpReceiver();
        await collector.StartAsync();
        await using var running = await StartAsync($"relp://127.0.0.1:{collector.Port}", "--Audit:NodeId=relp-node");
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        using var stop = new CancellationTokenSource();
        var traffic = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var response = await ada.GetAsync("/v1/models"); // each one an audit entry
            }
        });

        await WaitForLines(collector, 20);
        await collector.StopAsync();
        // Entries keep coming while the collector is down; the metrics show it unreachable and entries waiting.
        var deadline = DateTime.UtcNow.AddSeconds(20);
        string metrics;
        do
        {
            await Task.Delay(200);
            metrics = await running.Http.GetStringAsync("/metrics");
        }
        while (!(Metric(metrics, "appliance_audit_syslog_unreachable") == 1 && Metric(metrics, "appliance_audit_syslog_pending_entries") > 0) && DateTime.UtcNow < deadline);

        Assert.Equal(1, Metric(metrics, "appliance_audit_syslog_unreachable"));
        Assert.True(Metric(metrics, "appliance_audit_syslog_pending_entries") > 0, metrics);
        await collector.StartAsync();
        await WaitForLines(collector, collector.Messages.Count + 20);
        await stop.CancelAsync();
        await traffic;

        // Every entry from the first forwarded to the last reaches the collector (some maybe twice): one lost while the
        // collector was down would be a gap below the entries that came after the restart.
        await Task.Delay(1000);
        var received = Sequences(collector.Messages);
        var last = received.Max();
        var first = received.Min();
        var missing = Enumerable.Range((int)first, (int)(last - first + 1)).Where(seq => !received.Contains(seq)).ToList();
        Assert.True(missing.Count == 0, $"entries {string.Join(", ", missing.Take(20))} of {first}..{last} never reached the collector");
        Assert.All(collector.Messages, m => Assert.StartsWith("<", m, StringComparison.Ordinal));
        var after = await running.Http.GetStringAsync("/metrics");
        Assert.Equal(0, Metric(after, "appliance_audit_syslog_unreachable"));
        Assert.Equal(0, Metric(after, "appliance_audit_failing"));
        Assert.True(Metric(after, "appliance_audit_entries_total") >= last, after);
    }

    /// <summary>The value of this node's sample of a metric (-1 when absent).</summary>
    private static double Metric(string exposition, string name) =>
        exposition.Split('\n').Where(line => line.StartsWith(name + "{", StringComparison.Ordinal) && line.Contains("node=\"relp-node\"", StringComparison.Ordinal))
            .Select(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture))
            .DefaultIfEmpty(-1).First();

    private static HashSet<long> Sequences(IEnumerable<string> messages) =>
        [.. messages.Select(m => System.Text.RegularExpressions.Regex.Match(m, @"\[audit@32473 seq=""(\d+)""")).Where(m => m.Success)
            .Select(m => long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))];

    private static async Task WaitForLines(RsyslogRelpReceiver collector, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (collector.Messages.Count < count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the collector received {collector.Messages.Count} messages, expected {count}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Entries_are_forwarded_over_udp_one_per_datagram()
    {
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var messages = new List<string>();
        using var stop = new CancellationTokenSource();
        var receiving = ReceiveUdpAsync(udp, messages, stop.Token);

        await using var running = await StartAsync($"udp://127.0.0.1:{((IPEndPoint)udp.Client.LocalEndPoint!).Port}");
        await Exercise(running);
        var completed = await WaitFor(messages, m => m.Contains(" request.completed ", StringComparison.Ordinal) && m.Contains("user=\"ada\"", StringComparison.Ordinal));
        Assert.StartsWith("<110>1 ", completed, StringComparison.Ordinal);
        await stop.CancelAsync();
        await receiving;
    }

    [Fact]
    public async Task An_entry_longer_than_a_datagram_is_cut_and_marked_and_forwarding_goes_on()
    {
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var messages = new List<string>();
        using var stop = new CancellationTokenSource();
        var receiving = ReceiveUdpAsync(udp, messages, stop.Token);

        await using var running = await StartAsync($"udp://127.0.0.1:{((IPEndPoint)udp.Client.LocalEndPoint!).Port}", "--Audit:Syslog:MaxUdpBytes=600");
        await Exercise(running);
        await Exercise(running); // later entries still arrive: a long one does not wedge the forwarder

        var completed = await WaitFor(messages, m => m.Contains(" request.completed ", StringComparison.Ordinal) && m.Contains("user=\"ada\"", StringComparison.Ordinal));
        Assert.EndsWith("[truncated: the full entry is in the audit log and /audit/export]", completed, StringComparison.Ordinal);
        Assert.Contains(" hash=\"", completed, StringComparison.Ordinal); // the structured data stays whole
        await WaitFor(messages, m => m.Contains(" request.refused ", StringComparison.Ordinal));
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (CountCompleted(messages) < 2 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }

        Assert.True(CountCompleted(messages) >= 2, "the second request's entry should follow the first's");
        lock (messages)
        {
            Assert.All(messages, m => Assert.True(Encoding.UTF8.GetByteCount(m) <= 600, $"{Encoding.UTF8.GetByteCount(m)} bytes"));
        }

        await stop.CancelAsync();
        await receiving;
    }

    [Fact]
    public async Task A_damaged_cursor_file_restarts_forwarding_from_the_first_entry_instead_of_stopping_the_node()
    {
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var messages = new List<string>();
        using var stop = new CancellationTokenSource();
        var receiving = ReceiveUdpAsync(udp, messages, stop.Token);
        var target = $"udp://127.0.0.1:{((IPEndPoint)udp.Client.LocalEndPoint!).Port}";
        var data = _root.Combine("data");

        await using (var first = await StartAsync(target, $"--Appliance:DataFolder={data}"))
        {
            await Exercise(first);
            await WaitFor(messages, m => m.Contains(" request.completed ", StringComparison.Ordinal));
        }

        var cursor = Assert.Single(Directory.GetFiles(Path.Combine(data, "audit"), "syslog-cursor-*.txt"));
        await File.WriteAllTextAsync(cursor, "12\u0000\u0000garbage");
        lock (messages)
        {
            messages.Clear();
        }

        await using var second = await StartAsync(target, $"--Appliance:DataFolder={data}");
        var resent = await WaitFor(messages, m => m.Contains(" seq=\"1\" ", StringComparison.Ordinal));
        Assert.Contains("[audit@32473 seq=\"1\"", resent, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await second.Http.GetAsync("/health/live")).StatusCode);
        await stop.CancelAsync();
        await receiving;
    }

    /// <summary>
    /// With the audit store and the checkpoint key elsewhere (PostgreSQL, a key from Ansible in /etc), nothing made the
    /// data folder's audit/ folder, and the cursor could not be written: a restart then lost what the SIEM had not had.
    /// </summary>
    [Fact]
    public async Task The_cursor_is_kept_when_nothing_else_uses_the_data_folder_s_audit_folder()
    {
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var messages = new List<string>();
        using var stop = new CancellationTokenSource();
        var receiving = ReceiveUdpAsync(udp, messages, stop.Token);
        var data = _root.Combine("data-alone");

        await using (var running = await StartAsync($"udp://127.0.0.1:{((IPEndPoint)udp.Client.LocalEndPoint!).Port}", $"--Appliance:DataFolder={data}",
            $"--Audit:SqlitePath={Path.Combine(_root.Combine("store"), "audit.db")}", $"--Audit:CheckpointKeyPath={Path.Combine(_root.Combine("keys"), "checkpoint-key.pem")}"))
        {
            await Exercise(running);
            await WaitFor(messages, m => m.Contains(" request.completed ", StringComparison.Ordinal));
        }

        var cursor = Assert.Single(Directory.GetFiles(Path.Combine(data, "audit"), "syslog-cursor-*.txt"));
        Assert.True(long.Parse(await File.ReadAllTextAsync(cursor), System.Globalization.CultureInfo.InvariantCulture) > 0);
        await stop.CancelAsync();
        await receiving;
    }

    public void Dispose() => _root.Dispose();

    private static int CountCompleted(List<string> messages)
    {
        lock (messages)
        {
            return messages.Count(m => m.Contains(" request.completed ", StringComparison.Ordinal) && m.Contains("user=\"ada\"", StringComparison.Ordinal));
        }
    }

    private static Task ReceiveUdpAsync(UdpClient udp, List<string> messages, CancellationToken stop) => Task.Run(async () =>
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var datagram = await udp.ReceiveAsync(stop);
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

    private static async Task Exercise(RunningAppliance running)
    {
        using var ada = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        using var anonymous = running.ClientWith(null);
        Assert.Equal(HttpStatusCode.OK, (await ada.PostAsync("/v1/chat/completions", Chat())).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync("/v1/chat/completions", Chat())).StatusCode);
    }

    private static StringContent Chat() =>
        new("""{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""", Encoding.UTF8, "application/json");

    private async Task<RunningAppliance> StartAsync(string target, params string[] extra)
    {
        var model = _root.Combine("tiny");
        if (!Directory.Exists(model))
        {
            SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, model);
        }

        var running = await RunningAppliance.StartAsync([$"--Models:tiny:Path={model}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None",
            $"--Audit:Syslog:Target={target}", "--Audit:Syslog:PollInterval=00:00:00.100", .. extra]);
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
