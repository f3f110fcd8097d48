using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Appliance.Host.Extensions;

/// <summary>
/// Mutual TLS between the load balancers and the nodes: with <c>Tls:ClientCertificateAuthority</c> (the cluster CA's
/// certificate, PEM), every HTTPS endpoint asks for a client certificate and accepts only one that chains to that CA,
/// not to the machine's public roots. Plain HTTP endpoints (the node's loopback listener for local tools) are untouched.
/// The file may hold several CA certificates: during a CA rollover it holds the old and the new one, and a client
/// certificate of either is accepted.
/// </summary>
public static class ClusterTlsExtensions
{
    public const string AuthorityKey = "Tls:ClientCertificateAuthority";

    public static WebApplicationBuilder AddClusterTls(this WebApplicationBuilder builder)
    {
        var path = builder.Configuration[AuthorityKey];
        if (string.IsNullOrWhiteSpace(path))
        {
            return builder;
        }

        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"{AuthorityKey} '{path}' does not exist");
        }

        var authorities = Authorities(File.ReadAllText(path), path);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureHttpsDefaults(https =>
        {
            https.ClientCertificateMode = ClientCertificateMode.RequireCertificate;
            https.ClientCertificateValidation = (certificate, _, _) => IssuedBy(authorities, certificate);
        }));
        return builder;
    }

    /// <summary>Every certificate of a PEM bundle; one that holds none is a configuration error, named at start.</summary>
    public static X509Certificate2Collection Authorities(string pem, string path)
    {
        var authorities = new X509Certificate2Collection();
        authorities.ImportFromPem(pem);
        return authorities.Count > 0 ? authorities : throw new InvalidOperationException($"{AuthorityKey} '{path}' holds no certificate");
    }

    /// <summary>True when <paramref name="certificate"/> chains to one of <paramref name="authorities"/> alone, and is valid now for client use.</summary>
    public static bool IssuedBy(X509Certificate2Collection authorities, X509Certificate2 certificate)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        // The cluster CA publishes no revocation list: a node or balancer leaving is handled by re-issuing, not revoking.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        // Never fetch an issuer a presented certificate points at: a node reaches nothing outside its cluster.
        chain.ChainPolicy.DisableCertificateDownloads = true;
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.2")); // client authentication
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
