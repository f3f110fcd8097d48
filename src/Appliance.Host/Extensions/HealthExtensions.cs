using Appliance.Api.Models;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Appliance.Host.Extensions;

/// <summary>/health/live (the process answers) and /health/ready (every declared model is loaded and the node is not draining).</summary>
public static class HealthExtensions
{
    public static IServiceCollection AddApplianceHealthChecks(this IServiceCollection services)
    {
        services.AddSingleton<Appliance.Api.Admin.DrainGate>();
        services.AddHealthChecks().AddCheck<ModelsReadyCheck>("models", tags: ["ready"]).AddCheck<NotDrainingCheck>("drain", tags: ["ready"]);
        return services;
    }

    public static WebApplication MapApplianceHealth(this WebApplication app)
    {
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false }).AllowAnonymous();
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready") }).AllowAnonymous();
        return app;
    }

    /// <summary>A draining node reports not ready, so that the load balancer stops sending it requests.</summary>
    private sealed class NotDrainingCheck(Appliance.Api.Admin.DrainGate drain) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(drain.Draining ? HealthCheckResult.Unhealthy($"draining, {drain.InFlight} requests in flight") : HealthCheckResult.Healthy("admitting requests"));
    }

    private sealed class ModelsReadyCheck(IModelCatalog catalog) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var entries = catalog.Entries;
            var waiting = entries.Where(e => e.State != ModelLoadState.Ready).Select(e => $"{e.Id}: {e.State.ToString().ToLowerInvariant()}").ToList();
            return Task.FromResult(entries.Count > 0 && waiting.Count == 0
                ? HealthCheckResult.Healthy($"{entries.Count} models ready")
                : HealthCheckResult.Unhealthy(entries.Count == 0 ? "no models loaded yet" : string.Join(", ", waiting)));
        }
    }
}
