using Appliance.Host.Metrics;
using Prometheus;

namespace Appliance.Host.Extensions;

/// <summary>/metrics in Prometheus text format, for administrators (policy admin; Prometheus can fetch a Keycloak token itself).</summary>
public static class MetricsExtensions
{
    public static WebApplicationBuilder AddApplianceMetrics(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ApplianceMetrics>();
        return builder;
    }

    public static WebApplication UseApplianceMetrics(this WebApplication app)
    {
        // prometheus-net starts listening to .NET meters at its first collection; one collection here, at start, so
        // that counts from before the first scrape are not lost.
        app.Services.GetRequiredService<ApplianceMetrics>();
        Prometheus.Metrics.DefaultRegistry.CollectAndExportAsTextAsync(Stream.Null).GetAwaiter().GetResult();
        app.UseMiddleware<MetricsMiddleware>();
        return app;
    }

    public static WebApplication MapApplianceMetrics(this WebApplication app, string policy)
    {
        app.MapMetrics("/metrics").RequireAuthorization(policy);
        return app;
    }
}
