using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Appliance.IntegrationTests.Host;

/// <summary>
/// One TLS connection held open by hand, for HTTP/1.1 requests one after another on it: unlike HttpClient, which opens
/// another connection when one was closed, it shows whether the server kept the connection.
/// </summary>
internal sealed class TlsConnection : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly SslStream _tls;

    private TlsConnection(TcpClient tcp, SslStream tls, X509Certificate2 serverCertificate)
    {
        _tcp = tcp;
        _tls = tls;
        ServerCertificate = serverCertificate;
    }

    public X509Certificate2 ServerCertificate { get; }

    /// <summary>Connects with <paramref name="clientCertificate"/>; the server's certificate is taken as it comes (the test compares it).</summary>
    public static async Task<TlsConnection> OpenAsync(Uri server, X509Certificate2 clientCertificate)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port);
        var tls = new SslStream(tcp.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = server.Host,
            ClientCertificates = [clientCertificate],
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        });
        return new TlsConnection(tcp, tls, X509CertificateLoader.LoadCertificate(tls.RemoteCertificate!.GetRawCertData()));
    }

    /// <summary>Sends a GET and reads its whole answer (headers and a Content-Length or chunked body); throws when the server closed the connection.</summary>
    public async Task<string> GetAsync(string path)
    {
        await _tls.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: node\r\n\r\n"));
        var received = new List<byte>();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (true)
        {
            var read = await _tls.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                throw new IOException("the server closed the connection");
            }

            received.AddRange(buffer.AsSpan(0, read));
            var text = Encoding.ASCII.GetString([.. received]);
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end < 0)
            {
                continue;
            }

            var headers = text[..end].Split("\r\n").Select(line => line.Split(':', 2)).Where(parts => parts.Length == 2).ToList();
            if (headers.Any(parts => parts[0].Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) && parts[1].Contains("chunked", StringComparison.OrdinalIgnoreCase)))
            {
                // A chunked body ends with its zero-length chunk: read up to it, or the next answer would start with it.
                var body = text[(end + 4)..];
                if (body == "0\r\n\r\n" || body.EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal))
                {
                    return text;
                }

                continue;
            }

            var length = headers.Where(parts => parts[0].Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                .Select(parts => int.Parse(parts[1].Trim(), System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
            if (received.Count >= end + 4 + length)
            {
                return text;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _tls.DisposeAsync();
        _tcp.Dispose();
        ServerCertificate.Dispose();
    }
}
