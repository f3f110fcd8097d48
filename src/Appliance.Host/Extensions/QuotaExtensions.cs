using Appliance.Api.Quotas;
using Appliance.Host.Quotas;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Extensions;

/// <summary>Per-user and per-team quotas (configuration "Quotas"), counted from the audit log.</summary>
public static class QuotaExtensions
{
    public static WebApplicationBuilder AddApplianceQuotas(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<QuotaOptions>().Bind(builder.Configuration.GetSection(QuotaOptions.Section)).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<QuotaOptions>, QuotaOptionsValidator>();
        builder.Services.AddSingleton<QuotaLedger>();
        builder.Services.AddSingleton<IQuotaGate>(services => services.GetRequiredService<QuotaLedger>());
        builder.Services.AddHostedService<QuotaRefresher>();
        return builder;
    }
}
