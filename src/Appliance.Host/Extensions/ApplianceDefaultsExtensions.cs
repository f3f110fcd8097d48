using Appliance.Api.OpenAi;
using Appliance.Host.Options;

namespace Appliance.Host.Extensions;

/// <summary>Listening address, request limits, systemd integration and shutdown drain time.</summary>
public static class ApplianceDefaultsExtensions
{
    /// <summary>Where the embedded default listens when nothing else is configured: loopback only.</summary>
    public const string DefaultUrl = "http://127.0.0.1:8080";

    /// <summary>The longest delay a .NET timer takes (about 24.8 days): a longer timeout would fail every request.</summary>
    private static readonly TimeSpan MaxTimer = TimeSpan.FromDays(24);

    public static WebApplicationBuilder AddApplianceDefaults(this WebApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        if (string.IsNullOrEmpty(configuration["urls"]) && !configuration.GetSection("Kestrel:Endpoints").Exists())
        {
            builder.WebHost.UseUrls(DefaultUrl);
        }

        // Checked now as well as at start: sections read while the node is put together (Limits just below) would
        // otherwise be refused by the binder first, in its own words and one mistake at a time.
        if (new WrittenSettingsValidator(configuration).Validate(null, new WrittenSettings()) is { Failed: true } written)
        {
            throw new Microsoft.Extensions.Options.OptionsValidationException(nameof(WrittenSettings), typeof(WrittenSettings), written.Failures);
        }

        builder.Services.AddOptions<WrittenSettings>().ValidateOnStart();
        builder.Services.AddSingleton<Microsoft.Extensions.Options.IValidateOptions<WrittenSettings>, WrittenSettingsValidator>();
        builder.Services.AddOptions<ApplianceOptions>().Bind(configuration.GetSection(ApplianceOptions.Section)).ValidateOnStart()
            .Validate(o => o.DrainTimeout >= TimeSpan.Zero, "Appliance:DrainTimeout must not be negative")
            .Validate(o => !string.IsNullOrWhiteSpace(o.DataFolder), "Appliance:DataFolder is required");
        builder.Services.AddOptions<ApiLimits>().Bind(configuration.GetSection("Limits")).ValidateOnStart()
            .Validate(l => l.MaxBodyBytes >= 1024, "Limits:MaxBodyBytes must be at least 1024")
            .Validate(l => l.MaxMessages >= 1, "Limits:MaxMessages must be at least 1")
            .Validate(l => l.MaxN is >= 1 and <= 128, "Limits:MaxN must be between 1 and 128")
            .Validate(l => l.MaxTokens >= 1, "Limits:MaxTokens must be at least 1")
            .Validate(l => l.RequestTimeout > TimeSpan.Zero && l.RequestTimeout <= MaxTimer, "Limits:RequestTimeout must be positive and at most 24 days")
            // Under a second, the connection would often close before the timeout event is written: a reset, not the event.
            .Validate(l => l.RequestTimeoutGrace >= TimeSpan.FromSeconds(1) && l.RequestTimeoutGrace <= MaxTimer, "Limits:RequestTimeoutGrace must be between 00:00:01 and 24 days");

        var limits = configuration.GetSection("Limits").Get<ApiLimits>() ?? new ApiLimits();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.MaxRequestBodySize = limits.MaxBodyBytes);
        var drain = configuration.GetSection(ApplianceOptions.Section).Get<ApplianceOptions>()?.DrainTimeout ?? new ApplianceOptions().DrainTimeout;
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = drain);
        builder.Services.AddSystemd();
        builder.Services.AddSingleton(TimeProvider.System);
        return builder;
    }
}
