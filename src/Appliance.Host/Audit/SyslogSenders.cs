using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Appliance.Audit.Export;

namespace Appliance.Host.Audit;

/// <summary>A connection to the SIEM that takes syslog messages in order.</summary>
internal interface ISyslogSender : IDisposable
{
    /// <summary>
    /// Sends the messages in order and calls <paramref name="delivered"/> with each one's index once the target has it
    /// (RELP: acknowledged by the receiver; plain TCP and UDP: handed to the network, which is all they can tell).
    /// </summary>
    Task SendAsync(IReadOnlyList<byte[]> messages, Action<int> delivered, CancellationToken cancellation);
}

/// <summary>RFC 6587 octet counting: "LENGTH SP MESSAGE", so messages may hold any character.</summary>
internal sealed class TcpSyslogSender(TcpClient client) : ISyslogSender
{
    private readonly NetworkStream _stream = client.GetStream();

    public async Task SendAsync(IReadOnlyList<byte[]> messages, Action<int> delivered, CancellationToken cancellation)
    {
        for (var i = 0; i < messages.Count; i++)
        {
            await _stream.WriteAsync(Encoding.ASCII.GetBytes(messages[i].Length.ToString(CultureInfo.InvariantCulture) + " "), cancellation);
            await _stream.WriteAsync(messages[i], cancellation);
            delivered(i);
        }
    }

    public void Dispose() => client.Dispose();
}

/// <summary>One message per datagram (RFC 5426); a message longer than a datagram may be is cut and marked.</summary>
internal sealed class UdpSyslogSender(string host, int port, int maxBytes) : ISyslogSender
{
    private readonly UdpClient _client = new();

    public async Task SendAsync(IReadOnlyList<byte[]> messages, Action<int> delivered, CancellationToken cancellation)
    {
        for (var i = 0; i < messages.Count; i++)
        {
            await _client.SendAsync(SyslogFormatter.Truncate(messages[i], Math.Clamp(maxBytes, 480, 65_507)), host, port, cancellation);
            delivered(i);
        }
    }

    public void Dispose() => _client.Dispose();
}
