using Appliance.Api.Models;
using Appliance.Host.Models;
using Appliance.Host.Options;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Extensions;

/// <summary>
/// /health/live (the process answers), /health/ready (the node can serve: the models declared at start have been
/// tried, at least one model is ready, every model marked Required is ready, and the node is not draining) and
/// /health/models (each model's state, for monitoring).
/// </summary>
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
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready"), ResponseWriter = WriteReasons }).AllowAnonymous();
        // States only, no error text (that names paths and devices; /admin/pool has it for administrators).
        app.MapGet("/health/models", (ModelCatalog catalog, IOptionsMonitor<ModelsOptions> models) => Results.Json(new
        {
            models = catalog.Entries.Select(e => new
            {
                id = e.Id,
                state = e.State.ToString().ToLowerInvariant(),
                required = IsRequired(models, e.Id),
            }),
        })).AllowAnonymous();
        return app;
    }

    /// <summary>The status, then each check's reason on its own line, so that an operator's curl says why.</summary>
    private static Task WriteReasons(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "text/plain; charset=utf-8";
        var reasons = report.Entries.Select(entry => $"{entry.Key}: {entry.Value.Status}: {entry.Value.Description}");
        return context.Response.WriteAsync(string.Join('\n', reasons.Prepend(report.Status.ToString())) + "\n");
    }

    private static bool IsRequired(IOptionsMonitor<ModelsOptions> models, string id)
    {
        try
        {
            return models.CurrentValue.Models.TryGetValue(id, out var options) && options.Required;
        }
        catch (OptionsValidationException)
        {
            return false; // a broken settings edit; the model manager logs it
        }
    }

    /// <summary>A draining node reports not ready, so that the load balancer stops sending it requests.</summary>
    private sealed class NotDrainingCheck(Appliance.Api.Admin.DrainGate drain) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(drain.Draining ? HealthCheckResult.Unhealthy($"draining, {drain.InFlight} requests in flight") : HealthCheckResult.Healthy("admitting requests"));
    }

    /// <summary>
    /// Ready when the node can serve. A model an administrator unloaded, or one that failed, does not take the node
    /// (and every other model with it) out of the load balancer, unless it is marked Required.
    /// </summary>
    private sealed class ModelsReadyCheck(ModelCatalog catalog, IOptionsMonitor<ModelsOptions> models) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            var entries = catalog.Entries;
            var notReady = entries.Where(e => e.State != ModelLoadState.Ready).Select(e => $"{e.Id}: {e.State.ToString().ToLowerInvariant()}").ToList();
            var requiredDown = entries.Where(e => e.State != ModelLoadState.Ready && IsRequired(models, e.Id)).Select(e => e.Id).ToList();
            HealthCheckResult result = !catalog.StartupComplete ? HealthCheckResult.Unhealthy("loading the declared models: " + string.Join(", ", notReady))
                : !entries.Any(e => e.State == ModelLoadState.Ready) ? HealthCheckResult.Unhealthy(entries.Count == 0 ? "no models" : "no model can serve: " + string.Join(", ", notReady))
                : requiredDown.Count > 0 ? HealthCheckResult.Unhealthy("required models cannot serve: " + string.Join(", ", requiredDown))
                : notReady.Count > 0 ? HealthCheckResult.Degraded("serving; not serving: " + string.Join(", ", notReady))
                : HealthCheckResult.Healthy($"{entries.Count} models ready");
            return Task.FromResult(result);
        }
    }
}
