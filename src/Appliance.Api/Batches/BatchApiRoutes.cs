using Appliance.Api.OpenAi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Appliance.Api.Batches;

/// <summary>The Files and Batch APIs under /v1 (with Batches:Enabled; else their paths are unknown, as any other).</summary>
internal static class BatchApiRoutes
{
    public static void Map(RouteGroupBuilder v1)
    {
        var files = v1.MapGroup("/files").AddEndpointFilter(WhenEnabled);
        files.MapPost(string.Empty, FilesApi.UploadAsync);
        files.MapGet(string.Empty, FilesApi.ListAsync);
        files.MapGet("/{id}", FilesApi.GetAsync);
        files.MapGet("/{id}/content", FilesApi.ContentAsync);
        files.MapDelete("/{id}", FilesApi.DeleteAsync);
        var batches = v1.MapGroup("/batches").AddEndpointFilter(WhenEnabled);
        batches.MapPost(string.Empty, BatchesApi.CreateAsync);
        batches.MapGet(string.Empty, BatchesApi.ListAsync);
        batches.MapGet("/{id}", BatchesApi.GetAsync);
        batches.MapPost("/{id}/cancel", BatchesApi.CancelAsync);
    }

    /// <summary>Records the request before it changes anything (an upload, a deletion, a batch created or cancelled).</summary>
    public static Task RecordAcceptedAsync(HttpContext http) =>
        ModelResolution.RecordAcceptedAsync(http.RequestServices.GetRequiredService<Audit.IAccessRecorder>(), http);

    /// <summary>Whether the Batch API is on here: its store is registered only with Batches:Enabled.</summary>
    public static bool IsOn(HttpContext http) => http.RequestServices.GetService<IBatchStore>() is not null;

    /// <summary>Resolved in the handler, after <see cref="WhenEnabled"/>: a node with batches off has no store.</summary>
    public static IBatchStore Store(HttpContext http) => http.RequestServices.GetRequiredService<IBatchStore>();

    private static async ValueTask<object?> WhenEnabled(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        if (!IsOn(http))
        {
            return new OpenAiError(StatusCodes.Status404NotFound, $"Unknown request URL: {http.Request.Path}. The Batch API is turned off on this appliance (Batches:Enabled).",
                "invalid_request_error", null, "unknown_url").ToResult();
        }

        return await next(context);
    }
}
