using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Appliance.Api.Batches;

/// <summary>
/// /admin/batches: what every user's batches are doing (owner, state, counts), and a cancellation for any of them
/// (someone who left, a batch that holds the models too long). Errors are RFC 7807.
/// </summary>
public static class BatchAdminApi
{
    public static RouteGroupBuilder MapBatchAdminApi(this RouteGroupBuilder admin)
    {
        var batches = admin.MapGroup("/batches");
        batches.MapGet("/", ListAsync);
        batches.MapPost("/{id}/cancel", CancelAsync);
        return admin;
    }

    private static async Task<IResult> ListAsync(HttpContext http, string? owner, int? limit, string? after)
    {
        if (Disabled(http) is { } off)
        {
            return off;
        }

        var count = limit ?? 100;
        if (count is < 1 or > 1000)
        {
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid limit", detail: "'limit' must be between 1 and 1000.");
        }

        var batches = await BatchApiRoutes.Store(http).BatchesAsync(string.IsNullOrEmpty(owner) ? null : owner, count + 1, after, http.RequestAborted);
        return Results.Json(BatchJson.List([.. batches.Take(count).Select(Describe)], batches.Count > count));
    }

    private static async Task<IResult> CancelAsync(HttpContext http, TimeProvider time, string id)
    {
        if (Disabled(http) is { } off)
        {
            return off;
        }

        var store = BatchApiRoutes.Store(http);
        if (await store.BatchAsync(id, http.RequestAborted) is null)
        {
            return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "No such batch", detail: $"There is no batch '{id}'.");
        }

        try
        {
            if (await BatchesApi.RequestCancelAsync(http, store, time, id) is { } refusal)
            {
                return Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "Batch not cancellable", detail: refusal);
            }
        }
        catch (OpenAi.OpenAiRequestException unrecorded)
        {
            return Audit.AuditUnavailable.Problem("this administrative action" + (unrecorded.Error.Code == "audit_unavailable" ? string.Empty : $" ({unrecorded.Message})"));
        }

        return Results.Json(Describe((await store.BatchAsync(id, http.RequestAborted))!));
    }

    /// <summary>OpenAI's batch object, with whose it is.</summary>
    private static JsonObject Describe(BatchJob job)
    {
        var described = BatchJson.Batch(job);
        described["owner"] = job.Owner;
        return described;
    }

    private static IResult? Disabled(HttpContext http) =>
        BatchApiRoutes.IsOn(http)
            ? null
            : Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Batches are off", detail: "The Batch API is turned off on this appliance (Batches:Enabled).");
}
