using System.Security.Cryptography.X509Certificates;
using Appliance.Host.Extensions;

namespace Appliance.Host.Tls;

/// <summary>Where a Kestrel endpoint's certificate and key are (PEM files, <c>Kestrel:Endpoints:&lt;name&gt;:Certificate</c>).</summary>
public sealed record EndpointCertificateFiles(string Endpoint, string CertificatePath, string KeyPath, string? Password);

/// <summary>
/// The TLS files a node reads while it runs: each HTTPS endpoint's certificate (PEM with its key file) and, with mutual
/// TLS, the CAs a client certificate must chain to. Each is read again when its files change, on the next handshake or
/// when <c>POST /admin/tls/reload</c> asks, so that a renewed certificate or a CA rollover's step needs no restart (a
/// restart, or Kestrel rebinding an endpoint, would cut the streams running on it). Kestrel's own watching of
/// certificate files is off for that reason (<see cref="ClusterTlsExtensions"/>). The node's certificate file holds
/// its own certificate only (as the role writes it): no intermediate certificates are sent with it.
/// </summary>
public sealed partial class ClusterTlsFiles
{
    private readonly Dictionary<string, FileBackedValue<X509Certificate2>> _certificates;
    private readonly FileBackedValue<X509Certificate2Collection>? _authorities;
    private readonly ILogger<ClusterTlsFiles> _logger;

    public ClusterTlsFiles(IEnumerable<EndpointCertificateFiles> endpoints, string? authorityPath, TimeProvider time, ILogger<ClusterTlsFiles> logger)
    {
        _logger = logger;
        if (!string.IsNullOrWhiteSpace(authorityPath))
        {
            _authorities = Watch(new FileBackedValue<X509Certificate2Collection>(ClusterTlsExtensions.AuthorityKey, [authorityPath],
                () => ClusterTlsExtensions.Authorities(File.ReadAllText(authorityPath), authorityPath), _ => { }, () => 0, time));
        }

        _certificates = endpoints.ToDictionary(e => e.Endpoint, e => Watch(new FileBackedValue<X509Certificate2>(
            $"Kestrel:Endpoints:{e.Endpoint}:Certificate", [e.CertificatePath, e.KeyPath], () => LoadPem(e), CheckServerCertificate, () => AuthoritiesVersion, time)), StringComparer.OrdinalIgnoreCase);
    }

    public IEnumerable<string> Endpoints => _certificates.Keys;

    /// <summary>True when client certificates are checked against <c>Tls:ClientCertificateAuthority</c>.</summary>
    public bool ChecksClients => _authorities is not null;

    /// <summary>The certificate <paramref name="endpoint"/> presents in a handshake now.</summary>
    public X509Certificate2 ServerCertificate(string endpoint) => _certificates[endpoint].Current;

    /// <summary>True when a client certificate chains to one of the CAs in use now.</summary>
    public bool AcceptsClient(X509Certificate2 certificate) =>
        _authorities is null || ClusterTlsExtensions.IssuedBy(_authorities.Current, certificate);

    /// <summary>Counts the client-certificate CA sets put in use (0 without mutual TLS): a connection checked against one set need not be checked again until it changes.</summary>
    public int AuthoritiesVersion => _authorities?.Version ?? 0;

    /// <summary><see cref="AuthoritiesVersion"/> after looking whether the CA file changed (at most once a second).</summary>
    public int CurrentAuthoritiesVersion()
    {
        _ = _authorities?.Current;
        return AuthoritiesVersion;
    }

    /// <summary>Reads every changed file now. Files that cannot be read are named in <see cref="TlsReload.Errors"/>; what was in use before stays in use.</summary>
    public TlsReload Reload()
    {
        var errors = new List<string>();
        if (_authorities is not null)
        {
            Try(() => _authorities.Reload(), errors); // first: a renewed certificate is checked against the CAs
        }

        foreach (var value in _certificates.Values)
        {
            Try(() => value.Reload(), errors);
        }

        return new TlsReload(errors, InUse());
    }

    /// <summary>What handshakes use now (without reading any file).</summary>
    public TlsInUse InUse()
    {
        var certificates = _certificates.Select(pair => new TlsCertificateInUse(pair.Key, pair.Value.Paths[0], Describe(pair.Value.InUse))).ToList();
        var authorities = _authorities is null ? null : new TlsAuthoritiesInUse(_authorities.Paths[0], [.. _authorities.InUse.Select(Describe)]);
        return new TlsInUse(certificates, authorities);
    }

    private static void Try(Action reload, List<string> errors)
    {
        try
        {
            reload();
        }
        catch (InvalidDataException exception)
        {
            errors.Add(exception.Message);
        }
    }

    private static TlsCertificateSummary Describe(X509Certificate2 certificate) =>
        new(certificate.Subject, certificate.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256), certificate.NotAfter.ToUniversalTime());

    private static X509Certificate2 LoadPem(EndpointCertificateFiles files) => string.IsNullOrEmpty(files.Password)
        ? X509Certificate2.CreateFromPemFile(files.CertificatePath, files.KeyPath)
        : X509Certificate2.CreateFromEncryptedPemFile(files.CertificatePath, files.Password, files.KeyPath);

    /// <summary>
    /// A renewed certificate replaces the one in use only if the load balancers will take it: valid now, for server
    /// use, and, with mutual TLS, issued by one of the CAs the node trusts (in the cluster layout the same CAs the
    /// balancers trust; during a CA rollover both). Otherwise the node would go on presenting one they refuse.
    /// </summary>
    private void CheckServerCertificate(X509Certificate2 certificate)
    {
        var now = DateTime.UtcNow;
        if (now < certificate.NotBefore.ToUniversalTime() || now > certificate.NotAfter.ToUniversalTime())
        {
            throw new InvalidDataException($"the certificate is valid from {certificate.NotBefore.ToUniversalTime():u} to {certificate.NotAfter.ToUniversalTime():u} only");
        }

        var usages = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().SelectMany(e => e.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>()).ToList();
        if (usages.Count > 0 && !usages.Any(usage => usage.Value == ClusterTlsExtensions.ServerAuthentication))
        {
            throw new InvalidDataException("the certificate is not for server use (extended key usage serverAuth)");
        }

        if (_authorities is not null && !ClusterTlsExtensions.IssuedBy(_authorities.Current, certificate, ClusterTlsExtensions.ServerAuthentication))
        {
            throw new InvalidDataException($"the certificate ({certificate.Issuer}) is issued by none of the CAs in {ClusterTlsExtensions.AuthorityKey}");
        }
    }

    private FileBackedValue<T> Watch<T>(FileBackedValue<T> value) where T : class
    {
        value.Reloaded += changed => LogReloaded(changed.Description, string.Join(", ", changed.Paths));
        value.ReadFailed += (failed, exception) => LogReadFailed(exception.Message);
        return value;
    }

    [LoggerMessage(EventId = 4201, Level = LogLevel.Information, Message = "{Setting} read again from {Paths}: new TLS handshakes use it")]
    private partial void LogReloaded(string setting, string paths);

    [LoggerMessage(EventId = 4202, Level = LogLevel.Warning, Message = "{Error}; the node goes on with what it read before (install usable files: Ansible's site.yml does)")]
    private partial void LogReadFailed(string error);
}

public sealed record TlsCertificateSummary(string Subject, string Sha256, DateTime NotAfter);

public sealed record TlsCertificateInUse(string Endpoint, string Path, TlsCertificateSummary Certificate);

public sealed record TlsAuthoritiesInUse(string Path, IReadOnlyList<TlsCertificateSummary> Certificates);

public sealed record TlsInUse(IReadOnlyList<TlsCertificateInUse> Certificates, TlsAuthoritiesInUse? ClientCertificateAuthorities);

public sealed record TlsReload(IReadOnlyList<string> Errors, TlsInUse InUse);
