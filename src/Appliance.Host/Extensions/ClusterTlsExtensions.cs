using System.Security.Cryptography.X509Certificates;
using Appliance.Host.Tls;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Appliance.Host.Extensions;

/// <summary>
/// TLS on the node's endpoints as the Ansible role configures it. Each HTTPS endpoint with a PEM certificate and key
/// (<c>Kestrel:Endpoints:&lt;name&gt;:Certificate:Path</c> and <c>KeyPath</c>) presents what those files hold now: they are
/// read again when they change (<see cref="ClusterTlsFiles"/>), without rebinding the endpoint, so a renewed certificate
/// cuts no running stream. Mutual TLS between the load balancers and the nodes: with <c>Tls:ClientCertificateAuthority</c>
/// (the cluster CA's certificate, PEM), every HTTPS endpoint asks for a client certificate and accepts only one that
/// chains to that CA, not to the machine's public roots. The file may hold several CA certificates: during a CA rollover
/// it holds the old and the new one, and a client certificate of either is accepted. Plain HTTP endpoints (the node's
/// loopback listener for local tools) are untouched.
/// </summary>
public static class ClusterTlsExtensions
{
    public const string AuthorityKey = "Tls:ClientCertificateAuthority";

    /// <summary>The extended key usages a client's and a server's certificate must allow.</summary>
    public const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";
    public const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";

    public static WebApplicationBuilder AddClusterTls(this WebApplicationBuilder builder)
    {
        var path = builder.Configuration[AuthorityKey];
        if (!string.IsNullOrWhiteSpace(path) && !File.Exists(path))
        {
            throw new SettingsException($"{AuthorityKey} '{path}' {SettingsMistakes.Missing}");
        }

        var endpoints = CertificateFiles(builder.Configuration, builder.Environment.ContentRootPath);
        builder.Services.AddSingleton(services => new ClusterTlsFiles(endpoints, string.IsNullOrWhiteSpace(path) ? null : path,
            services.GetRequiredService<TimeProvider>(), services.GetRequiredService<ILogger<ClusterTlsFiles>>()));
        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            var files = kestrel.ApplicationServices.GetRequiredService<ClusterTlsFiles>();
            // Kestrel would rebind an endpoint whose certificate files changed (closing its connections after five
            // seconds): the files are read again by ClusterTlsFiles instead, and settings are read at a restart.
            var loader = kestrel.Configure(context.Configuration.GetSection("Kestrel"), reloadOnChange: false);
            foreach (var endpoint in files.Endpoints)
            {
                loader.Endpoint(endpoint, configured => configured.HttpsOptions.ServerCertificateSelector = (_, _) => files.ServerCertificate(endpoint));
            }

            if (files.ChecksClients)
            {
                kestrel.ConfigureHttpsDefaults(https =>
                {
                    https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
                    https.ClientCertificateValidation = (certificate, _, _) => files.AcceptsClient(certificate);
                });
            }
        });
        return builder;
    }

    /// <summary>The endpoints whose certificate is a PEM file with a key file (paths relative to the content root as Kestrel reads them).</summary>
    public static IReadOnlyList<EndpointCertificateFiles> CertificateFiles(IConfiguration configuration, string contentRoot) =>
        [.. configuration.GetSection("Kestrel:Endpoints").GetChildren()
            .Select(endpoint => (endpoint.Key, Certificate: endpoint.GetSection("Certificate")))
            .Where(e => !string.IsNullOrWhiteSpace(e.Certificate["Path"]) && !string.IsNullOrWhiteSpace(e.Certificate["KeyPath"]))
            .Select(e => new EndpointCertificateFiles(e.Key, Path.Combine(contentRoot, e.Certificate["Path"]!), Path.Combine(contentRoot, e.Certificate["KeyPath"]!),
                e.Certificate["Password"]))];

    /// <summary>Every certificate of a PEM bundle; one that holds none is a configuration error, named at start.</summary>
    public static X509Certificate2Collection Authorities(string pem, string path)
    {
        var authorities = new X509Certificate2Collection();
        authorities.ImportFromPem(pem);
        return authorities.Count > 0 ? authorities : throw new SettingsException($"{AuthorityKey} '{path}' holds no certificate");
    }

    /// <summary>True when <paramref name="certificate"/> chains to one of <paramref name="authorities"/> alone, and is valid now for <paramref name="usage"/> (client use unless said).</summary>
    public static bool IssuedBy(X509Certificate2Collection authorities, X509Certificate2 certificate, string usage = ClientAuthentication)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        // The cluster CA publishes no revocation list: a node or balancer leaving is handled by re-issuing, not revoking.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        // Never fetch an issuer a presented certificate points at: a node reaches nothing outside its cluster.
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid(usage));
        try
        {
            return chain.Build(certificate);
        }
        finally
        {
            foreach (var element in chain.ChainElements)
            {
                if (!ReferenceEquals(element.Certificate, certificate) && !authorities.Any(authority => ReferenceEquals(element.Certificate, authority)))
                {
                    element.Certificate.Dispose();
                }
            }
        }
    }
}
