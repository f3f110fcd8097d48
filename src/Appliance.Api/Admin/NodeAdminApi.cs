using System.Globalization;
using Appliance.Api.Audit;
using Appliance.Api.Models;
using Appliance.Engine;
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
        return admin;
    }

    private static IResult Pool(IModelCatalog catalog, NodeDevices devices, DrainGate drain) => Results.Json(new
    {
        draining = drain.Draining,
        inFlight = drain.InFlight,
        deviceSource = devices.Source,
        devices = devices.Devices.Select(d => new
        {
            id = d.Id, kind = d.Kind.ToString().ToLowerInvariant(), name = d.Name, uuid = d.Uuid, healthy = d.Healthy,
            memoryTotalBytes = d.MemoryTotalBytes, memoryUsedBytes = d.MemoryUsedBytes, threads = d.Threads,
        }),
        models = catalog.Entries.Select(e => new
        {
            id = e.Id,
            state = e.State.ToString().ToLowerInvariant(),
            error = e.Error,
            running = (e.Served?.Engine as GenerationEngine)?.RunningRequests,
            queued = (e.Served?.Engine as GenerationEngine)?.QueuedRequests,
            kvCacheUsedTokens = (e.Served?.Engine as GenerationEngine)?.KvCacheUsedTokens,
        }),
    });

    private static async Task<IResult> Drain(HttpContext http, DrainGate drain, IAccessRecorder recorder)
    {
        var timeout = TimeSpan.FromSeconds(60);
        if (http.Request.Query["timeout"] is { Count: > 0 } value)
        {
            if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || seconds is < 0 or > 3600)
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
