using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Audit;

/// <summary>
/// A real rsyslog (Debian's rsyslogd with imrelp, as a SIEM's collector runs it) receiving RELP on a loopback port and
/// writing each message, as received, to a file. It can be stopped and started again on the same port.
/// </summary>
internal sealed class RsyslogRelpReceiver : IDisposable
{
    private readonly TempFolder _folder = new("rsyslog");
    private Process? _process;

    public RsyslogRelpReceiver()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        File.WriteAllText(_folder.Combine("rsyslog.conf"), $"""
            global(workDirectory="{_folder.Path}")
            module(load="imrelp")
            input(type="imrelp" port="{Port}" address="127.0.0.1")
            template(name="raw" type="string" string="%rawmsg%\n")
            action(type="omfile" file="{Received}" template="raw")
            """);
    }

    public int Port { get; }

    /// <summary>The file every received message is appended to, one per line.</summary>
    public string Received => _folder.Combine("received.log");

    public IReadOnlyList<string> Messages => File.Exists(Received) ? File.ReadAllLines(Received) : [];

    public async Task StartAsync()
    {
        _process = Process.Start(new ProcessStartInfo("rsyslogd", ["-n", "-f", _folder.Combine("rsyslog.conf"), "-i", _folder.Combine("rsyslogd.pid")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        }) ?? throw new InvalidOperationException("rsyslogd did not start (tests/setup.sh installs rsyslog and rsyslog-relp)");
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
                await Task.Delay(100);
            }
        }
    }

    /// <summary>Stops it as an administrator restarting the collector would (SIGTERM: it writes out what it acknowledged).</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false })
        {
            Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
        }

        _process?.Dispose();
        _process = null;
    }

    public void Dispose()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            _process.WaitForExit();
        }

        _process?.Dispose();
        _folder.Dispose();
    }
}
