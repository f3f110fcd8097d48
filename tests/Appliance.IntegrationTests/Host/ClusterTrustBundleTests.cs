using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Appliance.Host.Extensions;

namespace Appliance.IntegrationTests.Host;

/// <summary>
/// The nodes' client-certificate authority file during a cluster CA rollover: it holds the old and the new CA, and a
/// balancer's certificate of either passes, while one of neither does not.
/// </summary>
public sealed class ClusterTrustBundleTests
{
    [Fact]
    public void A_bundle_of_two_CAs_accepts_client_certificates_of_either_and_no_other()
    {
        using var oldKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var newKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var strangerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var oldCa = Authority("CN=appliance cluster CA", oldKey);
        using var newCa = Authority("CN=appliance cluster CA 2", newKey);
        using var stranger = Authority("CN=appliance cluster CA", strangerKey); // the same name, another key
        var bundle = oldCa.ExportCertificatePem() + "\n" + newCa.ExportCertificatePem() + "\n";

        var authorities = ClusterTlsExtensions.Authorities(bundle, "bundle.pem");

        Assert.Equal(2, authorities.Count);
        Assert.True(ClusterTlsExtensions.IssuedBy(authorities, Client(oldCa)));
        Assert.True(ClusterTlsExtensions.IssuedBy(authorities, Client(newCa)));
        Assert.False(ClusterTlsExtensions.IssuedBy(authorities, Client(stranger)));
        Assert.False(ClusterTlsExtensions.IssuedBy(ClusterTlsExtensions.Authorities(newCa.ExportCertificatePem(), "new.pem"), Client(oldCa)));
        Assert.Throws<Appliance.Host.SettingsException>(() => ClusterTlsExtensions.Authorities("not a certificate", "empty.pem"));
    }

    private static X509Certificate2 Authority(string subject, ECDsa key)
    {
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
    }

    private static X509Certificate2 Client(X509Certificate2 ca)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=haproxy", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        return request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), RandomNumberGenerator.GetBytes(8));
    }
}
