using System.Security.Cryptography.X509Certificates;
using Appliance.Host.Cluster;
using Appliance.Host.Options;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;

namespace Appliance.Host.Extensions;

/// <summary>
/// ASP.NET Data Protection for the console: one application name for every node and release (the default is the
/// install path, which differs after an upgrade), a key ring that survives restarts (the data folder) or that the
/// nodes share (PostgreSQL), encrypted at rest with the cluster's certificate when one is configured.
/// </summary>
public static partial class DataProtectionExtensions
{
    public static WebApplicationBuilder AddApplianceDataProtection(this WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(KeyRingOptions.Section).Get<KeyRingOptions>() ?? new KeyRingOptions();
        var audit = builder.Configuration.GetSection(AuditOptions.Section).Get<AuditOptions>() ?? new AuditOptions();
        var appliance = builder.Configuration.GetSection(ApplianceOptions.Section).Get<ApplianceOptions>() ?? new ApplianceOptions();
        var protection = builder.Services.AddDataProtection().SetApplicationName("appliance");
        if (audit.Store == "postgresql" && !string.IsNullOrWhiteSpace(audit.PostgresConnectionString))
        {
            // Opened when first resolved (at start, after the audit store), not while the host is being composed.
            builder.Services.AddSingleton(_ => new PostgresXmlRepository(audit.PostgresConnectionString));
            builder.Services.AddOptions<KeyManagementOptions>().Configure<PostgresXmlRepository>((keys, repository) => keys.XmlRepository = repository);
        }
        else
        {
            protection.PersistKeysToFileSystem(new DirectoryInfo(Path.Combine(appliance.DataFolder, "identity", "data-protection-keys")));
        }

        if (!string.IsNullOrWhiteSpace(options.CertificatePath))
        {
            var certificate = LoadCertificate(options.CertificatePath);
            protection.ProtectKeysWithCertificate(certificate)
                .UnprotectKeysWithAnyCertificate([certificate, .. options.PreviousCertificatePaths.Select(LoadCertificate)]);
        }

        return builder;
    }

    /// <summary>
    /// In a cluster, makes sure the shared ring has a key before the node serves, under a database lock: nodes that
    /// start together would otherwise each make a first key, and cookies of one would not open on the other until
    /// their rings were next reread.
    /// </summary>
    public static WebApplication UseApplianceDataProtection(this WebApplication app)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Appliance.DataProtection");
        var certificate = app.Services.GetRequiredService<IConfiguration>().GetSection(KeyRingOptions.Section).Get<KeyRingOptions>()?.CertificatePath;
        var audit = app.Services.GetRequiredService<IConfiguration>().GetSection(AuditOptions.Section).Get<AuditOptions>();
        if (audit?.Store != "postgresql" || app.Services.GetService<PostgresXmlRepository>() is not { } repository)
        {
            return app;
        }

        using (var connection = repository.DataSource.OpenConnection())
        {
            using (var take = new Npgsql.NpgsqlCommand(PostgresXmlRepository.CreationLock, connection))
            {
                take.ExecuteNonQuery();
            }

            try
            {
                // Protecting something resolves the default key, creating (and storing) the first one if the ring has none.
                app.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("appliance-key-ring-check").Protect([1]);
            }
            finally
            {
                using var release = new Npgsql.NpgsqlCommand(PostgresXmlRepository.CreationUnlock, connection);
                release.ExecuteNonQuery();
            }
        }

        if (string.IsNullOrWhiteSpace(certificate))
        {
            LogUnencryptedRing(logger);
        }

        return app;
    }

    private static X509Certificate2 LoadCertificate(string path)
    {
        if (!File.Exists(path))
        {
            throw new SettingsException($"the key ring certificate '{path}' (DataProtection:CertificatePath or PreviousCertificatePaths) {SettingsMistakes.Missing}");
        }

        var certificate = X509Certificate2.CreateFromPemFile(path);
        return certificate.GetRSAPrivateKey() is null
            ? throw new SettingsException($"the key ring certificate '{path}' must hold a certificate with its RSA private key (PEM)")
            : certificate;
    }

    [LoggerMessage(EventId = 4101, Level = LogLevel.Warning, Message = "The console's key ring is shared through PostgreSQL unencrypted: set DataProtection:CertificatePath (the Ansible role provisions one) so that the database never holds the keys in the clear")]
    private static partial void LogUnencryptedRing(ILogger logger);
}
