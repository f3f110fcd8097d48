using Appliance.Api.Models;
using Appliance.Host.Models;
using Appliance.Host.Options;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Extensions;

/// <summary>
/// /health/live (the process answers), /health/ready (the node can serve: the models declared at start have been
/// tried, at least one declared model is ready, every model marked Required is ready, the node is not draining, its
/// audit log may record and it has read its realm's metadata)
/// and /health/models (each model's state, for administrators).
/// </summary>
public static class HealthExtensions
{
    public static IServiceCollection AddApplianceHealthChecks(this IServiceCollection services)
    {
        services.AddSingleton<Appliance.Api.Admin.DrainGate>();
        services.AddHealthChecks().AddCheck<ModelsReadyCheck>("models", tags: ["ready"]).AddCheck<NotDrainingCheck>("drain", tags: ["ready"])
            .AddCheck<AuditWritableCheck>("audit", tags: ["ready"]).AddCheck<RealmReadCheck>("identity", tags: ["ready"]);
        return services;
    }

    public static WebApplication MapApplianceHealth(this WebApplication app)
    {
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false }).AllowAnonymous();
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains("ready"), ResponseWriter = WriteReasons }).AllowAnonymous();
        // Model ids and states for monitoring: administrators only (ids of models hidden from callers stay hidden).
        app.MapGet("/health/models", (ModelCatalog catalog, IOptionsMonitor<ModelsOptions> models) => Results.Json(new
        {
            models = catalog.Entries.Select(e => new
            {
                id = e.Id,
                state = e.State.ToString().ToLowerInvariant(),
                required = IsRequired(models, e.Id),
            }),
        })).RequireAuthorization(Identity.AppliancePolicies.Admin);
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

    /// <summary>
    /// A node that cannot write its audit chain refuses every request: it reports not ready, so that the load balancer
    /// sends them elsewhere. Either another process took the chain's lock, or the last write failed (a full disk, the
    /// database gone); in that case for <see cref="FailedWriteUnready"/> only, after which a request may try again
    /// (nothing else would tell the node that the store is back).
    /// </summary>
    private sealed class AuditWritableCheck(IServiceProvider services, IOptions<AuditOptions> audit, TimeProvider time) : IHealthCheck
    {
        // Short: nothing but a request tells the node the store is back, and a store shared by every node (PostgreSQL)
        // that blips takes them all out at once for this long.
        private static readonly TimeSpan FailedWriteUnready = TimeSpan.FromSeconds(10);

        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            // Only a PostgreSQL store can lose its chain to another process (and asking builds the store: never for nothing).
            if (audit.Value.Store == "postgresql" && services.GetService<Appliance.Audit.Stores.IAuditStore>() is Appliance.Audit.Stores.PostgresAuditStore { WritesRefused: not null })
            {
                return Task.FromResult(HealthCheckResult.Unhealthy("the audit log may not record: another process holds this node's audit chain (see the log)"));
            }

            var log = audit.Value.Enabled ? services.GetService<Appliance.Audit.AuditLog>() : null;
            if (log is { WriterStopped: true })
            {
                return Task.FromResult(HealthCheckResult.Unhealthy("the audit writer has stopped (see the log); restart the service"));
            }

            if (log is { Failing: { } failing } && time.GetUtcNow() - failing.At < FailedWriteUnready)
            {
                return Task.FromResult(HealthCheckResult.Unhealthy($"the audit log could not record at {failing.At:yyyy-MM-ddTHH:mm:ssZ}: {failing.Reason}"));
            }

            return Task.FromResult(HealthCheckResult.Healthy("the audit log can record"));
        }
    }

    /// <summary>
    /// A node that has never read its realm's metadata can check no token: not ready, so that the load balancer sends
    /// callers to nodes that can, and an install or upgrade stops at the node whose Identity:Authority is wrong or
    /// cannot reach Keycloak. Once read, the metadata's last copy carries the node through a later Keycloak outage.
    /// </summary>
    /// <remarks>
    /// With API keys on, the node still serves their callers: degraded (200, so the load balancers keep it), which the
    /// Ansible role's ready check does not accept. The answer is anonymous: the address and what it answered are in the
    /// log (event 3025), not here.
    /// </remarks>
    private sealed class RealmReadCheck(Identity.RealmMetadataWatch realm, IOptions<IdentityOptions> identity) : IHealthCheck
    {
        private const string Unread = "the realm's OpenID metadata has not been read, so no token can be checked (see the log, event 3025)";

        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(!realm.Unread ? HealthCheckResult.Healthy("tokens can be checked")
                : identity.Value.ApiKeys.Enabled ? HealthCheckResult.Degraded(Unread + "; API keys are")
                : HealthCheckResult.Unhealthy(Unread));
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
            // The built-in embedding model does not make a node that serves chat ready: the declared models decide,
            // and it counts only on a node that declares none. Reasons give counts, not model ids (this is anonymous).
            var all = catalog.Entries;
            var declared = all.Where(e => e.Id != Runtime.Onnx.Embeddings.MiniLmPackage.ModelId).ToList();
            var entries = declared.Count > 0 ? declared : [.. all];
            var ready = entries.Count(e => e.State == ModelLoadState.Ready);
            var down = entries.Where(e => e.State != ModelLoadState.Ready).GroupBy(e => e.State.ToString().ToLowerInvariant()).Select(g => $"{g.Count()} {g.Key}");
            var requiredDown = entries.Count(e => e.State != ModelLoadState.Ready && IsRequired(models, e.Id));
            var summary = $"{ready} of {entries.Count} models serving" + string.Concat(down.Select(d => $", {d}"));
            // A node that declares nothing at all (an install before its models are listed, with neither the demo nor
            // the embedding model) is ready: it serves what it was given, nothing, and the install must go on.
            HealthCheckResult result = !catalog.StartupComplete ? HealthCheckResult.Unhealthy("loading the declared models: " + summary)
                : entries.Count == 0 ? HealthCheckResult.Healthy("no models declared")
                : ready == 0 ? HealthCheckResult.Unhealthy("no model can serve: " + summary)
                : requiredDown > 0 ? HealthCheckResult.Unhealthy($"{requiredDown} required models cannot serve: " + summary)
                : ready < entries.Count ? HealthCheckResult.Degraded(summary)
                : HealthCheckResult.Healthy(summary);
            return Task.FromResult(result);
        }
    }
}
