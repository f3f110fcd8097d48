using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Appliance.IntegrationTests.Deployment;

/// <summary>
/// A SIEM's syslog listener (TCP) on the lab bridge: keeps what the nodes forward to it (the last megabyte of it), so
/// that the lab shows the audit forwarding reaching its target through the nodes' egress rules.
/// </summary>
public sealed class SyslogSink : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly StringBuilder _received = new();
    private long _bytes;

    public SyslogSink(string address)
    {
        _listener = new TcpListener(IPAddress.Parse(address), 0);
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public long BytesReceived => Interlocked.Read(ref _bytes);

    /// <summary>The text received lately (the entries are UTF-8 syslog lines).</summary>
    public string Received
    {
        get
        {
            lock (_received)
            {
                return _received.ToString();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting.ContinueWith(_ => { }, TaskScheduler.Default);
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var connection = await _listener.AcceptTcpClientAsync(_stop.Token);
            _ = DrainAsync(connection);
        }
    }

    private async Task DrainAsync(TcpClient connection)
    {
        using (connection)
        {
            var buffer = new byte[8192];
            var stream = connection.GetStream();
            try
            {
                int read;
                while ((read = await stream.ReadAsync(buffer, _stop.Token)) > 0)
                {
                    Interlocked.Add(ref _bytes, read);
                    lock (_received)
                    {
                        _received.Append(Encoding.UTF8.GetString(buffer, 0, read));
                        if (_received.Length > 1 << 20)
                        {
                            _received.Remove(0, _received.Length - (1 << 19));
                        }
                    }
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                // The node went away (a restart, the lab ending): it reconnects on its own.
            }
        }
    }
}
