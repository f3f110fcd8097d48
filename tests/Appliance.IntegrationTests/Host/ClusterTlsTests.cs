using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Nodes;
using Appliance.Host;
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
        using var ca = Authority("CN=appliance cluster CA", caKey);
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

    /// <summary>
    /// A renewed certificate and a CA rollover's bundle are used by the next handshake, found by the node itself or read
    /// at once on POST /admin/tls/reload, while a connection opened before keeps working: no restart, and the endpoint
    /// is not bound again. Files that cannot be read or used are named and leave the node presenting what it read
    /// before. A connection of a client whose CA is no longer trusted is closed.
    /// </summary>
    [Fact]
    public async Task Renewed_certificate_files_serve_the_next_handshake_without_closing_open_connections()
    {
        using var oldCaKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var oldCa = Authority("CN=appliance cluster CA 1", oldCaKey);
        using var newCaKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var newCa = Authority("CN=appliance cluster CA 2", newCaKey);
        using var firstKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var first = Issue(oldCa, "CN=node-1", firstKey, "1.3.6.1.5.5.7.3.1", IPAddress.Loopback);
        using var renewedKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var renewed = Issue(newCa, "CN=node-1", renewedKey, "1.3.6.1.5.5.7.3.1", IPAddress.Loopback);
        using var oldBalancerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var oldBalancer = Issue(oldCa, "CN=haproxy", oldBalancerKey, "1.3.6.1.5.5.7.3.2").CopyWithPrivateKey(oldBalancerKey);
        using var newBalancerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var newBalancer = Issue(newCa, "CN=haproxy", newBalancerKey, "1.3.6.1.5.5.7.3.2").CopyWithPrivateKey(newBalancerKey);
        File.WriteAllText(_root.Combine("ca.crt"), oldCa.ExportCertificatePem());
        File.WriteAllText(_root.Combine("node.crt"), first.ExportCertificatePem());
        File.WriteAllText(_root.Combine("node.key"), firstKey.ExportPkcs8PrivateKeyPem());

        // In a settings file, as the role writes it: configuration files are watched, and so are certificates named there.
        var endpoints = new JsonObject
        {
            ["Cluster"] = new JsonObject
            {
                ["Url"] = "https://127.0.0.1:0",
                ["Certificate"] = new JsonObject { ["Path"] = _root.Combine("node.crt"), ["KeyPath"] = _root.Combine("node.key") },
            },
            ["Loopback"] = new JsonObject { ["Url"] = "http://127.0.0.1:0" },
        };
        File.WriteAllText(_root.Combine("appsettings.json"), new JsonObject { ["Kestrel"] = new JsonObject { ["Endpoints"] = endpoints } }.ToJsonString());
        await using var node = await RunningAppliance.StartAsync("--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None",
            $"--APPLIANCE_SETTINGS={_root.Combine("appsettings.json")}", $"--Tls:ClientCertificateAuthority={_root.Combine("ca.crt")}");
        var addresses = node.App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToList();
        var cluster = new Uri(addresses.Single(a => a.StartsWith("https:", StringComparison.Ordinal)));
        using var admin = new HttpClient { BaseAddress = new Uri(addresses.Single(a => a.StartsWith("http:", StringComparison.Ordinal))) };
        admin.DefaultRequestHeaders.Authorization = new("Bearer", node.Token);

        await using var opened = await TlsConnection.OpenAsync(cluster, oldBalancer);
        Assert.Equal(first.Thumbprint, opened.ServerCertificate.Thumbprint);
        Assert.StartsWith("HTTP/1.1 200", await opened.GetAsync("/health/live"), StringComparison.Ordinal);

        // Step "trust" of a CA rollover, then "issue": both CAs, then the node's certificate from the new one. The node
        // finds them itself (it looks at most once a second).
        File.WriteAllText(_root.Combine("ca.crt"), oldCa.ExportCertificatePem() + "\n" + newCa.ExportCertificatePem() + "\n");
        File.WriteAllText(_root.Combine("node.crt"), renewed.ExportCertificatePem());
        File.WriteAllText(_root.Combine("node.key"), renewedKey.ExportPkcs8PrivateKeyPem());
        // Long enough for Kestrel's own watching of certificate files, were it on, to have rebound the endpoint (seen here
        // within eight seconds), which would refuse this connection and close the one opened before.
        await Task.Delay(TimeSpan.FromSeconds(8));
        await using var later = await TlsConnection.OpenAsync(cluster, newBalancer);
        Assert.Equal(renewed.Thumbprint, later.ServerCertificate.Thumbprint);
        Assert.StartsWith("HTTP/1.1 200", await later.GetAsync("/health/live"), StringComparison.Ordinal);
        Assert.StartsWith("HTTP/1.1 200", await opened.GetAsync("/health/live"), StringComparison.Ordinal); // still open

        // A key that does not belong to the certificate (a copy cut short), a certificate for clients put in its place,
        // and one of a CA the node does not trust are named, and the node keeps the renewed one.
        using var strayKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var strangerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var stranger = Authority("CN=appliance cluster CA 1", strangerKey); // the old CA's name, another key
        using var wrongCa = Issue(stranger, "CN=node-1", renewedKey, "1.3.6.1.5.5.7.3.1", IPAddress.Loopback);
        using var forClients = Issue(newCa, "CN=node-1", renewedKey, "1.3.6.1.5.5.7.3.2", IPAddress.Loopback);
        foreach (var (certificate, key, error) in new[]
        {
            (renewed, strayKey, "Kestrel:Endpoints:Cluster:Certificate"), (forClients, renewedKey, "not for server use"), (wrongCa, renewedKey, "issued by none of the CAs"),
        })
        {
            File.WriteAllText(_root.Combine("node.crt"), certificate.ExportCertificatePem());
            File.WriteAllText(_root.Combine("node.key"), key.ExportPkcs8PrivateKeyPem());
            using var refused = await admin.PostAsync("/admin/tls/reload", null);
            var problem = await refused.Content.ReadAsStringAsync();
            Assert.True(refused.StatusCode == HttpStatusCode.Conflict, problem);
            Assert.Contains(error, problem, StringComparison.Ordinal);
            Assert.Contains(renewed.GetCertHashString(HashAlgorithmName.SHA256), problem, StringComparison.Ordinal); // still in use
        }

        await using (var meanwhile = await TlsConnection.OpenAsync(cluster, newBalancer))
        {
            Assert.Equal(renewed.Thumbprint, meanwhile.ServerCertificate.Thumbprint);
        }

        // Step "finish": the new CA alone, read at once on request; a balancer certificate of the old CA no longer gets in.
        File.WriteAllText(_root.Combine("node.crt"), renewed.ExportCertificatePem());
        File.WriteAllText(_root.Combine("node.key"), renewedKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(_root.Combine("ca.crt"), newCa.ExportCertificatePem());
        using (var reloaded = await admin.PostAsync("/admin/tls/reload", null))
        {
            Assert.Equal(HttpStatusCode.OK, reloaded.StatusCode);
            using var inUse = JsonDocument.Parse(await reloaded.Content.ReadAsStringAsync());
            Assert.Equal(renewed.GetCertHashString(HashAlgorithmName.SHA256), inUse.RootElement.GetProperty("certificates")[0].GetProperty("certificate").GetProperty("sha256").GetString());
            Assert.Equal([newCa.GetCertHashString(HashAlgorithmName.SHA256)],
                inUse.RootElement.GetProperty("clientCertificateAuthorities").GetProperty("certificates").EnumerateArray().Select(c => c.GetProperty("sha256").GetString()));
        }

        using (var stale = Client(newCa, oldBalancer))
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => stale.GetAsync(new Uri(cluster, "/health/live")));
        }

        using (var current = Client(newCa, newBalancer))
        {
            Assert.Equal(HttpStatusCode.OK, (await current.GetAsync(new Uri(cluster, "/health/live"))).StatusCode);
        }

        // A connection opened with the new CA's certificate goes on; the one opened with the old CA's is closed at its
        // next request: its certificate was checked at the handshake, and the node no longer trusts that CA.
        Assert.StartsWith("HTTP/1.1 200", await later.GetAsync("/health/live"), StringComparison.Ordinal);
        await Assert.ThrowsAnyAsync<IOException>(() => opened.GetAsync("/health/live"));
    }

    public void Dispose() => _root.Dispose();

    [Fact]
    public async Task Tls_files_that_cannot_be_used_stop_the_start_as_settings_to_correct()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var ca = Authority("CN=appliance cluster CA", caKey);
        using var nodeKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var node = Issue(ca, "CN=node-1", nodeKey, "1.3.6.1.5.5.7.3.1", IPAddress.Loopback);
        File.WriteAllText(_root.Combine("ca.crt"), ca.ExportCertificatePem());
        File.WriteAllText(_root.Combine("node.crt"), node.ExportCertificatePem());
        File.WriteAllText(_root.Combine("node.key"), nodeKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(_root.Combine("empty-ca.crt"), "# the bundle was meant to go here\n");
        using var otherKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        File.WriteAllText(_root.Combine("other.key"), otherKey.ExportPkcs8PrivateKeyPem());
        foreach (var file in Directory.GetFiles(_root.Path))
        {
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddMinutes(-5)); // written a while ago: no copy is under way
        }

        // A CA bundle without a certificate (an empty template, a key copied in its place): refused, not restarted.
        var (exit, output) = await StartProcessAsync($"--Tls:ClientCertificateAuthority={_root.Combine("empty-ca.crt")}",
            $"--Kestrel:Endpoints:Cluster:Certificate:Path={_root.Combine("node.crt")}", $"--Kestrel:Endpoints:Cluster:Certificate:KeyPath={_root.Combine("node.key")}");
        Assert.True(exit == SettingsMistakes.ExitCode, output);
        Assert.Contains($"  - Tls:ClientCertificateAuthority '{_root.Combine("empty-ca.crt")}' holds no certificate", output, StringComparison.Ordinal);

        // A key that is not the certificate's: the same, naming the endpoint's setting and its files.
        (exit, output) = await StartProcessAsync($"--Tls:ClientCertificateAuthority={_root.Combine("ca.crt")}",
            $"--Kestrel:Endpoints:Cluster:Certificate:Path={_root.Combine("node.crt")}", $"--Kestrel:Endpoints:Cluster:Certificate:KeyPath={_root.Combine("other.key")}");
        Assert.True(exit == SettingsMistakes.ExitCode, output);
        Assert.Contains($"  - Kestrel:Endpoints:Cluster:Certificate ({_root.Combine("node.crt")}, {_root.Combine("other.key")}):", output, StringComparison.Ordinal);

        // A key file that is not there yet (a disk mounted late, a copy not made): systemd is to try again.
        (exit, output) = await StartProcessAsync($"--Tls:ClientCertificateAuthority={_root.Combine("ca.crt")}",
            $"--Kestrel:Endpoints:Cluster:Certificate:Path={_root.Combine("node.crt")}", $"--Kestrel:Endpoints:Cluster:Certificate:KeyPath={_root.Combine("missing.key")}");
        Assert.True(exit == SettingsMistakes.RetryExitCode, output);
        Assert.Contains($"  - Kestrel:Endpoints:Cluster:Certificate: '{_root.Combine("missing.key")}' does not exist", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_start_between_the_copy_of_a_certificate_and_of_its_key_waits_for_the_key()
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var ca = Authority("CN=appliance cluster CA", caKey);
        using var oldKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var newKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var renewed = Issue(ca, "CN=node-1", newKey, "1.3.6.1.5.5.7.3.1", IPAddress.Loopback);
        // Ansible has just copied the renewed certificate; the old key is still there, its new one follows in a moment.
        File.WriteAllText(_root.Combine("node.key"), oldKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(_root.Combine("node.crt"), renewed.ExportCertificatePem());
        var copy = Task.Run(async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(1));
            File.WriteAllText(_root.Combine("node.key"), newKey.ExportPkcs8PrivateKeyPem());
        });

        await using var node = await RunningAppliance.StartAsync("--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None",
            "--Kestrel:Endpoints:Cluster:Url=https://127.0.0.1:0", "--Kestrel:Endpoints:Loopback:Url=http://127.0.0.1:0",
            $"--Kestrel:Endpoints:Cluster:Certificate:Path={_root.Combine("node.crt")}", $"--Kestrel:Endpoints:Cluster:Certificate:KeyPath={_root.Combine("node.key")}");
        await copy;
        Assert.Equal(renewed.Thumbprint, node.App.Services.GetRequiredService<Appliance.Host.Tls.ClusterTlsFiles>().ServerCertificate("Cluster").Thumbprint);
    }

    /// <summary>The host as systemd starts it, with a cluster endpoint beside loopback: its exit code and output.</summary>
    private Task<(int Exit, string Output)> StartProcessAsync(params string[] settings)
    {
        var host = Path.Combine(RepositoryPaths.Root, "src", "Appliance.Host", "bin", RepositoryPaths.Configuration, "net10.0", "Appliance.Host.dll");
        return ProcessRunner.RunAsync("dotnet", [host, "--environment=Development", "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={_root.Combine("data")}",
            "--Kestrel:Endpoints:Cluster:Url=https://127.0.0.1:0", "--Kestrel:Endpoints:Loopback:Url=http://127.0.0.1:0", .. settings], TimeSpan.FromMinutes(1));
    }

    private static X509Certificate2 Authority(string subject, ECDsa key)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
    }

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
