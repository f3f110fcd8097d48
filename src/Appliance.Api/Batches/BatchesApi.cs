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
    /// <summary>A token's own bookkeeping, which says nothing of who the caller is: not kept with the batch.</summary>
    private static readonly HashSet<string> TokenMechanics = new(StringComparer.Ordinal) { "exp", "iat", "nbf", "jti", "auth_time", "session_state", "sid", "typ", "at_hash", "nonce", "iss", "aud" };

    private static readonly HashSet<string> Known = ["input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after"];

    public static async Task<IResult> CreateAsync(HttpContext http, IOptions<ApiLimits> limits, IOptions<BatchOptions> options, TimeProvider time)
    {
        var store = BatchApiRoutes.Store(http);
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

        if (await store.OpenCountAsync(owner, http.RequestAborted) >= options.Value.MaxOpenPerOwner)
        {
            throw new OpenAiRequestException(new OpenAiError(StatusCodes.Status429TooManyRequests,
                $"You have {options.Value.MaxOpenPerOwner} batches that have not ended, the most one may have; create this one once one of them has ended.",
                "rate_limit_error", null, "too_many_open_batches"), 60);
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
            Claims = [.. http.User.Claims.Where(c => !TokenMechanics.Contains(c.Type)).Select(c => KeyValuePair.Create(c.Type, c.Value))],
            SourceIp = http.Connection.RemoteIpAddress?.ToString(),
            Host = http.Request.Host.HasValue ? http.Request.Host.Value : null,
        };
        RequestAudit.Of(http).Reason = $"create {job.Id} from {inputFileId} for {endpoint}";
        await BatchApiRoutes.RecordAcceptedAsync(http);
        await store.AddBatchAsync(job, CancellationToken.None);
        return Results.Json(BatchJson.Batch(job));
    }

    public static async Task<IResult> GetAsync(HttpContext http, string id)
    {
        var store = BatchApiRoutes.Store(http);
        return Results.Json(BatchJson.Batch(await OwnedAsync(http, store, id)));
    }

    public static async Task<IResult> ListAsync(HttpContext http, int? limit, string? after)
    {
        var store = BatchApiRoutes.Store(http);
        var count = limit ?? 20;
        if (count is < 1 or > 100)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'limit' must be between 1 and 100.", "limit"));
        }

        var batches = await store.BatchesAsync(FilesApi.Owner(http), count + 1, after, http.RequestAborted);
        return Results.Json(BatchJson.List([.. batches.Take(count).Select(BatchJson.Batch)], batches.Count > count));
    }

    public static async Task<IResult> CancelAsync(HttpContext http, TimeProvider time, string id)
    {
        var store = BatchApiRoutes.Store(http);
        await OwnedAsync(http, store, id);
        if (await RequestCancelAsync(http, store, time, id) is { } refusal)
        {
            throw new OpenAiRequestException(new OpenAiError(StatusCodes.Status409Conflict, refusal, "invalid_request_error", null, "batch_not_cancellable"));
        }

        return Results.Json(BatchJson.Batch(await OwnedAsync(http, store, id)));
    }

    /// <summary>Asks the batch to stop (recorded first); why it cannot be, or null. Cancelling twice is no error.</summary>
    internal static async Task<string?> RequestCancelAsync(HttpContext http, IBatchStore store, TimeProvider time, string id)
    {
        RequestAudit.Of(http).Reason = $"cancel {id}";
        await BatchApiRoutes.RecordAcceptedAsync(http);
        if (!await store.RequestCancelAsync(id, time.GetUtcNow(), CancellationToken.None)
            && await store.BatchAsync(id, CancellationToken.None) is { } job && job.Status is not (BatchStatus.Cancelling or BatchStatus.Cancelled))
        {
            return $"The batch {id} is {job.Status}; only a validating or running batch can be cancelled.";
        }

        return null;
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
