using System.Security.Cryptography.X509Certificates;

namespace Appliance.Tests.Common;

/// <summary>Trusting one private CA and nothing else, as a load balancer trusts the cluster CA.</summary>
public static class CertificateTrust
{
    /// <summary>True when <paramref name="presented"/> chains to <paramref name="authority"/> alone.</summary>
    public static bool ChainsTo(X509Certificate2 authority, X509Certificate? presented)
    {
        if (presented is not X509Certificate2 certificate)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }
}
