using System.Text.Json;
using Appliance.Api.Audit;
using Appliance.Api.OpenAi;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Appliance.Api.Batches;

/// <summary>/v1/batches: create a batch from an uploaded file, follow it, list and cancel batches.</summary>
internal static class BatchesApi
{
    private static readonly TimeSpan Window = TimeSpan.FromHours(24);
    private static readonly HashSet<string> Known = ["input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after"];

    public static async Task<IResult> CreateAsync(HttpContext http, IBatchStore store, IOptions<ApiLimits> limits, TimeProvider time)
    {
        var owner = FilesApi.Owner(http);
        using var fields = await JsonFields.ReadAsync(http.Request, limits.Value.MaxBodyBytes, http.RequestAborted);
        var (inputFileId, endpoint, metadata) = fields.Parse(Read);
        var file = await store.FileAsync(inputFileId, http.RequestAborted);
        if (file is null || file.Owner != owner)
        {
            throw new OpenAiRequestException(new OpenAiError(StatusCodes.Status404NotFound, $"No such File object: {inputFileId}", "invalid_request_error", "input_file_id", "not_found"));
        }

        if (file.Purpose != StoredFile.BatchInput)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"The file {inputFileId} is of purpose '{file.Purpose}'; a batch reads a file uploaded with purpose 'batch'.", "input_file_id", "invalid_file"));
        }

        var now = time.GetUtcNow();
        var job = new BatchJob
        {
            Id = BatchJob.NewId(),
            Owner = owner,
            Endpoint = endpoint,
            InputFileId = inputFileId,
            CreatedAt = now,
            ExpiresAt = now + Window,
            Metadata = metadata,
            Claims = [.. http.User.Claims.Select(c => KeyValuePair.Create(c.Type, c.Value))],
            SourceIp = http.Connection.RemoteIpAddress?.ToString(),
        };
        await store.AddBatchAsync(job, http.RequestAborted);
        RequestAudit.Of(http).Reason = $"created {job.Id} from {inputFileId} for {endpoint}";
        return Results.Json(BatchJson.Batch(job));
    }

    public static async Task<IResult> GetAsync(HttpContext http, IBatchStore store, string id) =>
        Results.Json(BatchJson.Batch(await OwnedAsync(http, store, id)));

    public static async Task<IResult> ListAsync(HttpContext http, IBatchStore store, int? limit, string? after)
    {
        var count = limit ?? 20;
        if (count is < 1 or > 100)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'limit' must be between 1 and 100.", "limit"));
        }

        var batches = await store.BatchesAsync(FilesApi.Owner(http), count + 1, after, http.RequestAborted);
        return Results.Json(BatchJson.List([.. batches.Take(count).Select(BatchJson.Batch)], batches.Count > count));
    }

    public static async Task<IResult> CancelAsync(HttpContext http, IBatchStore store, TimeProvider time, string id)
    {
        var job = await OwnedAsync(http, store, id);
        if (!await store.RequestCancelAsync(id, time.GetUtcNow(), http.RequestAborted))
        {
            job = await OwnedAsync(http, store, id);
            if (job.Status is not (BatchStatus.Cancelling or BatchStatus.Cancelled))
            {
                throw new OpenAiRequestException(new OpenAiError(StatusCodes.Status409Conflict,
                    $"The batch {id} is {job.Status}; only a validating or running batch can be cancelled.", "invalid_request_error", null, "batch_not_cancellable"));
            }
        }

        RequestAudit.Of(http).Reason = $"cancelled {id}";
        return Results.Json(BatchJson.Batch(await OwnedAsync(http, store, id)));
    }

    private static async Task<BatchJob> OwnedAsync(HttpContext http, IBatchStore store, string id)
    {
        var job = await store.BatchAsync(id, http.RequestAborted);
        return job is not null && job.Owner == FilesApi.Owner(http)
            ? job
            : throw new OpenAiRequestException(new OpenAiError(StatusCodes.Status404NotFound, $"No such Batch object: {id}", "invalid_request_error", "id", "not_found"));
    }

    private static (string InputFileId, string Endpoint, IReadOnlyDictionary<string, string>? Metadata) Read(JsonFields fields)
    {
        fields.RejectUnknown(Known);
        var input = fields.RequiredString("input_file_id");
        var endpoint = fields.RequiredString("endpoint");
        if (!BatchInput.Endpoints.Contains(endpoint, StringComparer.Ordinal))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"'endpoint' must be one of {string.Join(", ", BatchInput.Endpoints)}.", "endpoint"));
        }

        if (fields.RequiredString("completion_window") != "24h")
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'completion_window' must be 24h.", "completion_window"));
        }

        if (fields.Has("output_expires_after"))
        {
            throw new OpenAiRequestException(OpenAiError.Unsupported("output_expires_after", "an expiry per output file (Batches:RetentionDays applies)"));
        }

        Dictionary<string, string>? metadata = null;
        if (fields.Root.TryGetProperty("metadata", out var given) && given.ValueKind != JsonValueKind.Null)
        {
            if (given.ValueKind != JsonValueKind.Object)
            {
                throw new OpenAiRequestException(OpenAiError.Invalid("'metadata' must be an object of strings.", "metadata", "invalid_type"));
            }

            metadata = [];
            foreach (var entry in given.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String || entry.Name.Length > 64 || entry.Value.GetString()!.Length > 512 || metadata.Count == 16)
                {
                    throw new OpenAiRequestException(OpenAiError.Invalid("'metadata' holds at most 16 pairs: keys of at most 64 characters, string values of at most 512.", "metadata"));
                }

                metadata[entry.Name] = entry.Value.GetString()!;
            }
        }

        return (input, endpoint, metadata);
    }
}
