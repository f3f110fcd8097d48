using Appliance.Audit.Pricing;
using System.Globalization;
using Appliance.Api.Audit;
using Appliance.Api.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Appliance.Api.Admin;

/// <summary>What the admin API shows of the node's devices (the host fills it from device discovery).</summary>
public sealed record NodeDevices(string Source, IReadOnlyList<Engine.Pool.PoolDevice> Devices);

/// <summary>
/// /admin/pool (devices, models and their engines' load) and /admin/drain (stop admitting, let running requests finish,
/// answer when idle) and /admin/resume. Changes are recorded in the audit log before they are made.
/// </summary>
public static class NodeAdminApi
{
    public static RouteGroupBuilder MapNodeAdminApi(this RouteGroupBuilder admin)
    {
        admin.MapGet("/pool", Pool);
        admin.MapPost("/drain", Drain);
        admin.MapPost("/resume", Resume);
        admin.MapGet("/usage", Usage);
        return admin;
    }

    private static IResult Pool(IModelCatalog catalog, IModelAdministration models, NodeDevices devices, DrainGate drain)
    {
        var replicas = models.Replicas;
        return Results.Json(new
        {
            draining = drain.Draining,
            inFlight = drain.InFlight,
            deviceSource = devices.Source,
            hostMemoryPlacedBytes = replicas.Sum(r => r.Memory?.HostBytes ?? 0),
            devices = devices.Devices.Select(d => new
            {
                id = d.Id, kind = d.Kind.ToString().ToLowerInvariant(), name = d.Name, uuid = d.Uuid, healthy = d.Healthy,
                memoryTotalBytes = d.MemoryTotalBytes, memoryUsedBytes = d.MemoryUsedBytes, threads = d.Threads,
                memoryPlacedBytes = replicas.Where(r => r.DeviceId == d.Id).Sum(r => r.MemoryBytes),
            }),
            models = catalog.Entries.Select(e => new
            {
                id = e.Id,
                state = e.State.ToString().ToLowerInvariant(),
                error = e.Error,
                running = e.Served is null ? (int?)null : replicas.Where(r => r.Model == e.Id).Sum(r => r.Running),
                queued = e.Served is null ? (int?)null : replicas.Where(r => r.Model == e.Id).Sum(r => r.Queued),
                replicas = replicas.Where(r => r.Model == e.Id).Select(r => new
                {
                    replica = r.Replica, device = r.DeviceId, healthy = r.Healthy, running = r.Running, queued = r.Queued,
                    kvCacheUsedTokens = r.KvCacheUsedTokens, kvCacheCapacityTokens = r.KvCacheCapacityTokens,
                    memoryBytes = r.MemoryBytes, loadedAt = r.LoadedAt,
                    prefixCache = new
                    {
                        capacityTokens = r.PrefixCache.CapacityTokens, lookupTokens = r.PrefixCache.LookupTokens,
                        hitTokens = r.PrefixCache.HitTokens, hitRate = r.PrefixCache.HitRate,
                    },
                    speculation = new { draftedTokens = r.SpeculativeTokens.Drafted, acceptedTokens = r.SpeculativeTokens.Accepted },
                    splitSteps = r.SplitSteps,
                    memory = r.Memory is not { } m ? null : new
                    {
                        deviceBytes = m.DeviceBytes, hostBytes = m.HostBytes, weightsBytes = m.WeightsBytes, kvCacheBytes = m.KvCacheBytes,
                        logitsBytes = m.LogitsBytes, runtimeBytes = m.RuntimeBytes, kvType = m.KvType, contextLength = m.ContextLength,
                        maxBatchSize = m.MaxBatchSize,
                    },
                }),
            }),
        });
    }

    /// <summary>Tokens (and their cost) per user, team or model from the audit store, with the replica-seconds each model has held (chargeback).</summary>
    private static async Task<IResult> Usage(
        HttpContext http, IAuditReader reader, PriceList prices, IModelAdministration models, IAccessRecorder recorder, TimeProvider time)
    {
        if (UsageReport.Parse(http, time) is not { } query)
        {
            return UsageReport.Invalid(http, time);
        }

        if (AuditApi.UnknownNode(reader, query.Node) is { } unknown)
        {
            return unknown;
        }

        if (!await recorder.TryAcceptAsync(http))
        {
            return AuditUnavailable.Problem("this administrative read");
        }

        return UsageReport.Build(reader, prices, query, models.ReplicaSeconds());
    }

    private static async Task<IResult> Drain(HttpContext http, DrainGate drain, IAccessRecorder recorder)
    {
        var timeout = TimeSpan.FromSeconds(60);
        if (http.Request.Query["timeout"] is { Count: > 0 } value)
        {
            if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !(seconds is >= 0 and <= 3600)) // NaN passes neither
            {
                return Results.ValidationProblem(new Dictionary<string, string[]> { ["timeout"] = ["must be a number of seconds from 0 to 3600"] });
            }

            timeout = TimeSpan.FromSeconds(seconds);
        }

        RequestAudit.Of(http).Reason = "drain the node";
        if (!await recorder.TryAcceptAsync(http))
        {
            return AuditUnavailable.Problem("this administrative action");
        }

        drain.Drain();
        var idle = await drain.WhenIdleAsync(timeout, http.RequestAborted);
        var body = new { draining = true, idle, inFlight = drain.InFlight };
        return idle ? Results.Json(body) : Results.Json(body, statusCode: StatusCodes.Status202Accepted);
    }

    private static async Task<IResult> Resume(HttpContext http, DrainGate drain, IAccessRecorder recorder)
    {
        RequestAudit.Of(http).Reason = "resume admitting requests";
        if (!await recorder.TryAcceptAsync(http))
        {
            return AuditUnavailable.Problem("this administrative action");
        }

        drain.Resume();
        return Results.Json(new { draining = false, inFlight = drain.InFlight });
    }
}
