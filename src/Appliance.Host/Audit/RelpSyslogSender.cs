using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Appliance.Host.Audit;

/// <summary>
/// RELP (rsyslog's Reliable Event Logging Protocol, imrelp): every message is acknowledged by the receiver, so an entry
/// counts as forwarded only once the SIEM has it. Plain TCP cannot tell: what sat in the socket's buffers when the
/// receiver went away is lost although it was written. Frames are "TXNR SP COMMAND SP DATALEN [SP DATA] LF"; the
/// session opens with an "open" offer of the syslog command and messages go as "syslog" frames, a window of them
/// sent before their "rsp 200" answers are read, in order.
/// </summary>
internal sealed class RelpSyslogSender : ISyslogSender
{
    private const int Window = 128;
    private static readonly byte[] Offer = "relp_version=0\nrelp_software=appliance\ncommands=syslog"u8.ToArray();

    private readonly TcpClient _client;
    private readonly NetworkStream _stream;
    private readonly TimeSpan _answerTimeout;
    private readonly byte[] _buffer = new byte[4096];
    private int _buffered;
    private int _read;
    private long _transaction;

    private RelpSyslogSender(TcpClient client, TimeSpan answerTimeout)
    {
        _client = client;
        _stream = client.GetStream();
        _answerTimeout = answerTimeout;
    }

    /// <summary>Connects and opens a RELP session (the receiver must offer the syslog command).</summary>
    public static async Task<RelpSyslogSender> OpenAsync(string host, int port, TimeSpan answerTimeout, CancellationToken cancellation)
    {
        var client = new TcpClient();
        try
        {
            await client.ConnectAsync(host, port, cancellation);
            var sender = new RelpSyslogSender(client, answerTimeout);
            await sender.WriteFrameAsync("open", Offer, cancellation);
            var (_, data) = await sender.ReadAnswerAsync(cancellation);
            if (!Encoding.ASCII.GetString(data).Split('\n').Contains("commands=syslog", StringComparer.Ordinal))
            {
                throw new IOException($"the RELP receiver does not offer the syslog command: {Printable(data)}");
            }

            return sender;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    public async Task SendAsync(IReadOnlyList<byte[]> messages, Action<int> delivered, CancellationToken cancellation)
    {
        for (var start = 0; start < messages.Count; start += Window)
        {
            var end = Math.Min(messages.Count, start + Window);
            var first = _transaction + 1;
            for (var i = start; i < end; i++)
            {
                await WriteFrameAsync("syslog", messages[i], cancellation);
            }

            await _stream.FlushAsync(cancellation);
            for (var i = start; i < end; i++)
            {
                var (transaction, _) = await ReadAnswerAsync(cancellation);
                if (transaction != first + (i - start))
                {
                    throw new IOException($"the RELP receiver answered transaction {transaction}, expected {first + (i - start)}");
                }

                delivered(i);
            }
        }
    }

    public void Dispose()
    {
        try
        {
            // A polite close; the receiver ends the session either way when the connection goes.
            var close = Encoding.ASCII.GetBytes($"{NextTransaction()} close 0\n");
            _stream.Write(close);
        }
        catch (Exception exception) when (exception is IOException or SocketException or ObjectDisposedException)
        {
        }

        _client.Dispose();
    }

    private async Task WriteFrameAsync(string command, byte[] data, CancellationToken cancellation)
    {
        var header = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{NextTransaction()} {command} {data.Length} "));
        await _stream.WriteAsync(header, cancellation);
        await _stream.WriteAsync(data, cancellation);
        await _stream.WriteAsync("\n"u8.ToArray(), cancellation);
    }

    private long NextTransaction() => _transaction = _transaction >= 999_999_999 ? 1 : _transaction + 1;

    /// <summary>The next "rsp" frame: its transaction number and data after the "200 OK" status; any other status fails.</summary>
    private async Task<(long Transaction, byte[] Data)> ReadAnswerAsync(CancellationToken cancellation)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(_answerTimeout);
        try
        {
            var transaction = long.Parse(await ReadTokenAsync(timeout.Token), NumberStyles.None, CultureInfo.InvariantCulture);
            var command = await ReadTokenAsync(timeout.Token);
            var length = int.Parse(await ReadTokenAsync(timeout.Token, endsAtNewline: true), NumberStyles.None, CultureInfo.InvariantCulture);
            var data = length == 0 ? [] : await ReadBytesAsync(length, timeout.Token);
            if (length > 0 && await ReadBytesAsync(1, timeout.Token) is not [(byte)'\n'])
            {
                throw new IOException("a RELP frame from the receiver does not end with a newline");
            }

            if (command == "serverclose")
            {
                throw new IOException("the RELP receiver closed the session");
            }

            var status = Encoding.ASCII.GetString(data.AsSpan(0, Math.Min(data.Length, 3)));
            if (command != "rsp" || status != "200")
            {
                throw new IOException($"the RELP receiver refused transaction {transaction}: {command} {Printable(data)}");
            }

            var newline = Array.IndexOf(data, (byte)'\n');
            return (transaction, newline < 0 ? [] : data[(newline + 1)..]);
        }
        catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
        {
            throw new IOException($"the RELP receiver did not answer within {_answerTimeout.TotalSeconds:F0} s");
        }
        catch (FormatException exception)
        {
            throw new IOException($"the RELP receiver sent a malformed frame ({exception.Message})", exception);
        }
    }

    /// <summary>Bytes up to the next space (or newline, where a frame without data ends).</summary>
    private async Task<string> ReadTokenAsync(CancellationToken cancellation, bool endsAtNewline = false)
    {
        var token = new StringBuilder();
        while (true)
        {
            var next = (await ReadBytesAsync(1, cancellation))[0];
            if (next == ' ' || (endsAtNewline && next == '\n'))
            {
                return token.ToString();
            }

            if (token.Length > 32 || next == '\n')
            {
                throw new IOException("the RELP receiver sent a malformed frame header");
            }

            token.Append((char)next);
        }
    }

    private async Task<byte[]> ReadBytesAsync(int count, CancellationToken cancellation)
    {
        var result = new byte[count];
        var filled = 0;
        while (filled < count)
        {
            if (_read == _buffered)
            {
                _buffered = await _stream.ReadAsync(_buffer, cancellation);
                _read = 0;
                if (_buffered == 0)
                {
                    throw new IOException("the RELP receiver closed the connection");
                }
            }

            var take = Math.Min(count - filled, _buffered - _read);
            Array.Copy(_buffer, _read, result, filled, take);
            (filled, _read) = (filled + take, _read + take);
        }

        return result;
    }

    private static string Printable(byte[] data) => Encoding.ASCII.GetString(data.AsSpan(0, Math.Min(data.Length, 200))).Replace('\n', ' ');
}
