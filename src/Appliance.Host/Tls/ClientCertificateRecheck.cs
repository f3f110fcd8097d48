using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections.Features;

namespace Appliance.Host.Tls;

/// <summary>
/// A client certificate is checked at the handshake, and a connection lives on after it. When the CAs a node trusts
/// change (the finish step of a CA rollover, often because the old CA's key may have leaked), a connection opened with
/// a certificate of a CA no longer trusted is closed at its next request, before anything is served or recorded on it:
/// the nodes no longer restart for a rollover, and a restart used to close it.
/// </summary>
public static partial class ClientCertificateRecheck
{
    private const string CheckedVersion = "Appliance.Tls.ClientAuthoritiesVersion";

    public static WebApplication UseClientCertificateRecheck(this WebApplication app)
    {
        var files = app.Services.GetRequiredService<ClusterTlsFiles>();
        if (!files.ChecksClients)
        {
            return app;
        }

        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ClientCertificateRecheck));
        app.Use(async (context, next) =>
        {
            if (context.Connection.ClientCertificate is { } certificate && !StillTrusted(context, files, certificate))
            {
                LogClosed(logger, certificate.Subject, certificate.Issuer, context.Connection.RemoteIpAddress?.ToString() ?? "?");
                // The whole connection, not only this request's stream (HTTP/2 would keep the connection open).
                if (context.Features.Get<IConnectionLifetimeFeature>() is { } connection)
                {
                    connection.Abort();
                }
                else
                {
                    context.Abort();
                }

                return;
            }

            await next(context);
        });
        return app;
    }

    /// <summary>Checked once per connection and set of CAs: the chain is built again only after the CAs changed.</summary>
    private static bool StillTrusted(HttpContext context, ClusterTlsFiles files, X509Certificate2 certificate)
    {
        var version = files.CurrentAuthoritiesVersion();
        var items = context.Features.Get<IConnectionItemsFeature>()?.Items;
        if (items is not null)
        {
            lock (items) // shared by the streams of an HTTP/2 connection
            {
                if (items.TryGetValue(CheckedVersion, out var checkedVersion) && checkedVersion is int known && known == version)
                {
                    return true;
                }
            }
        }

        if (!files.AcceptsClient(certificate))
        {
            return false;
        }

        if (items is not null)
        {
            lock (items)
            {
                items[CheckedVersion] = version;
            }
        }

        return true;
    }

    [LoggerMessage(EventId = 4203, Level = LogLevel.Warning, Message = "Closed a connection from {Address}: its client certificate ({Subject}, issued by {Issuer}) chains to none of the CAs the node trusts now")]
    private static partial void LogClosed(ILogger logger, string subject, string issuer, string address);
}
