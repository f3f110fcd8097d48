namespace Appliance.Host.Options;

/// <summary>
/// The key ring that protects console cookies, antiforgery tokens and sign-in state (configuration section
/// "DataProtection"). On one node it is a folder in the data folder; with Audit:Store=postgresql it is shared through
/// the cluster's database.
/// </summary>
public sealed record KeyRingOptions
{
    public const string Section = "DataProtection";

    /// <summary>
    /// A PEM file with a certificate and its RSA private key that encrypts the ring's keys where they are stored (the
    /// Ansible role provisions one per cluster). Empty: the keys are stored unencrypted, readable to whoever reads
    /// the store; a warning says so at start in a cluster.
    /// </summary>
    public string CertificatePath { get; init; } = string.Empty;

    /// <summary>
    /// Certificates (PEM) that encrypted the ring before <see cref="CertificatePath"/> replaced them: kept for reading
    /// the keys they encrypted, so that rotating the certificate signs nobody out.
    /// </summary>
    public IReadOnlyList<string> PreviousCertificatePaths { get; init; } = [];
}
