using Appliance.Audit.Pricing;
using Appliance.Api.OpenAi;
using Appliance.Engine.Pool;
using Appliance.Host.Quotas;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Options;

/// <summary>Marks the check of every settings section as written; it has no values of its own.</summary>
public sealed class WrittenSettings;

/// <summary>
/// Stops the start when a section of the node's settings holds something the binder would pass over in silence (see
/// <see cref="SettingsAsWritten"/>); Models has its own check, which also runs when the settings files change.
/// </summary>
public sealed class WrittenSettingsValidator(IConfiguration configuration) : IValidateOptions<WrittenSettings>
{
    /// <summary>The appliance's sections and the options each binds to (Pool feeds two).</summary>
    public static readonly IReadOnlyList<(string Section, Type[] Shapes)> Sections =
    [
        (ApplianceOptions.Section, [typeof(ApplianceOptions)]),
        ("Limits", [typeof(ApiLimits)]),
        (IdentityOptions.Section, [typeof(IdentityOptions)]),
        (AuditOptions.Section, [typeof(AuditOptions)]),
        (PoolOptions.Section, [typeof(PoolOptions), typeof(DeviceInventoryOptions)]),
        (QuotaOptions.Section, [typeof(QuotaOptions)]),
        (Appliance.Audit.Pricing.PricingOptions.Section, [typeof(Appliance.Audit.Pricing.PricingOptions)]),
        (KeyRingOptions.Section, [typeof(KeyRingOptions)]),
        ("Tls", [typeof(TlsSettings)]),
        ("Metrics", [typeof(MetricsSettings)]),
        (Api.Batches.BatchOptions.Section, [typeof(Api.Batches.BatchOptions)]),
        (Api.Guardrails.GuardrailOptions.Section, [typeof(Api.Guardrails.GuardrailOptions)]),
    ];

    /// <summary>Top-level names a settings file may hold: ours, Models, and those ASP.NET Core reads itself.</summary>
    private static readonly string[] TopLevel = [.. Sections.Select(s => s.Section), ModelsOptions.Section, "Logging", "Kestrel", "Urls", "AllowedHosts"];

    public ValidateOptionsResult Validate(string? name, WrittenSettings options)
    {
        var failures = Sections.SelectMany(s => SettingsAsWritten.Check(configuration.GetSection(s.Section), s.Shapes))
            .Concat(SettingsAsWritten.MisspelledSections(configuration, TopLevel)).ToList();
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>The shape of the "Tls" section, read by key where it is used.</summary>
    private sealed record TlsSettings
    {
        public string ClientCertificateAuthority { get; init; } = string.Empty;
    }

    /// <summary>The shape of the "Metrics" section, read by key where it is used.</summary>
    private sealed record MetricsSettings
    {
        public string ManagementUrl { get; init; } = string.Empty;
    }
}
