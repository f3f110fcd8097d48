using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Appliance.Tests.Common;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Appliance.IntegrationTests.Host;

/// <summary>
/// A node as the Ansible role configures it in a cluster with mutual TLS: HTTPS with a certificate of the cluster CA
/// on its cluster address, client certificates of that CA required there, and plain HTTP on loopback for local tools.
/// </summary>
public sealed class ClusterTlsTests : IDisposable
{
    private readonly TempFolder _root = new("cluster-tls");

    [Fact]
    public async Task Only_a_client_with_a_cluster_certificate_gets_through_and_plain_http_on_the_cluster_port_is_refused()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=appliance cluster CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var server = Issue(ca, "CN=node-1", serverKey, "1.3.6.1.5.5.7.3.1", IPAddress.Loopback);
        File.WriteAllText(_root.Combine("ca.crt"), ca.ExportCertificatePem());
        File.WriteAllText(_root.Combine("node.crt"), server.ExportCertificatePem());
        File.WriteAllText(_root.Combine("node.key"), serverKey.ExportPkcs8PrivateKeyPem());

        int managementPort;
        using (var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            managementPort = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        await using var node = await RunningAppliance.StartAsync($"--Metrics:ManagementUrl=http://127.0.0.1:{managementPort}",
            "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None",
            "--Kestrel:Endpoints:Cluster:Url=https://127.0.0.1:0", $"--Kestrel:Endpoints:Cluster:Certificate:Path={_root.Combine("node.crt")}",
            $"--Kestrel:Endpoints:Cluster:Certificate:KeyPath={_root.Combine("node.key")}", "--Kestrel:Endpoints:Loopback:Url=http://127.0.0.1:0",
            $"--Tls:ClientCertificateAuthority={_root.Combine("ca.crt")}");
        var addresses = node.App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToList();
        var cluster = new Uri(addresses.Single(a => a.StartsWith("https:", StringComparison.Ordinal)));
        var loopback = new Uri(addresses.Single(a => a.StartsWith("http:", StringComparison.Ordinal) && !a.EndsWith($":{managementPort}", StringComparison.Ordinal)));

        // The management listener is bound beside the configured endpoints, and the console's own API client uses the
        // loopback listener, not the HTTPS one nor the management one.
        using (var scraper = new HttpClient())
        {
            Assert.Equal(HttpStatusCode.OK, (await scraper.GetAsync($"http://127.0.0.1:{managementPort}/metrics")).StatusCode);
        }

        using (var consoleApi = await node.App.Services.GetRequiredService<Appliance.WebConsole.IConsoleApi>().CreateAsync(new System.Security.Claims.ClaimsPrincipal()))
        {
            Assert.Equal(loopback.Port, consoleApi.BaseAddress!.Port);
            Assert.Equal(HttpStatusCode.OK, (await consoleApi.GetAsync("/health/live")).StatusCode);
        }

        using var balancerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var balancer = Issue(ca, "CN=haproxy", balancerKey, "1.3.6.1.5.5.7.3.2");
        using var outsiderKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var outsider = new CertificateRequest("CN=haproxy", outsiderKey, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));

        using (var trusted = Client(ca, balancer.CopyWithPrivateKey(balancerKey)))
        {
            Assert.Equal(HttpStatusCode.OK, (await trusted.GetAsync(new Uri(cluster, "/health/live"))).StatusCode);
        }

        foreach (var refused in new[] { null, outsider })
        {
            using var client = Client(ca, refused);
            await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(new Uri(cluster, "/health/live")));
        }

        using (var plain = new HttpClient())
        {
            // Plain HTTP to the cluster port: no answer at all, whatever the path.
            await Assert.ThrowsAnyAsync<Exception>(() => plain.GetAsync(new UriBuilder(cluster) { Scheme = "http", Path = "/health/live" }.Uri));
            Assert.Equal(HttpStatusCode.OK, (await plain.GetAsync(new Uri(loopback, "/health/live"))).StatusCode); // local tools
        }
    }

    public void Dispose() => _root.Dispose();

    private static X509Certificate2 Issue(X509Certificate2 ca, string subject, ECDsa key, string usage, IPAddress? address = null)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
        if (address is not null)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(address);
            request.CertificateExtensions.Add(names.Build());
        }

        return request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), RandomNumberGenerator.GetBytes(8)); // ca holds its key
    }

    private static HttpClient Client(X509Certificate2 ca, X509Certificate2? clientCertificate) => new(new SocketsHttpHandler
    {
        SslOptions =
        {
            ClientCertificates = clientCertificate is null ? null : new X509CertificateCollection { clientCertificate },
            RemoteCertificateValidationCallback = (_, certificate, _, _) => CertificateTrust.ChainsTo(ca, certificate),
        },
    });
}
