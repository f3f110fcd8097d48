using System.Text.Json.Nodes;

namespace Appliance.Api.Batches;

/// <summary>The Files and Batch APIs' objects as OpenAI writes them (unix-second times, snake_case names).</summary>
public static class BatchJson
{
    public static JsonObject File(StoredFile file) => new()
    {
        ["id"] = file.Id,
        ["object"] = "file",
        ["bytes"] = file.Bytes,
        ["created_at"] = file.CreatedAt.ToUnixTimeSeconds(),
        ["expires_at"] = null,
        ["filename"] = file.Filename,
        ["purpose"] = file.Purpose,
        ["status"] = "processed",
        ["status_details"] = null,
    };

    public static JsonObject Batch(BatchJob job) => new()
    {
        ["id"] = job.Id,
        ["object"] = "batch",
        ["endpoint"] = job.Endpoint,
        ["errors"] = job.Errors.Count == 0 ? null : new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray([.. job.Errors.Select(e => (JsonNode)new JsonObject
            {
                ["code"] = e.Code,
                ["message"] = e.Message,
                ["param"] = e.Param,
                ["line"] = e.Line,
            })]),
        },
        ["input_file_id"] = job.InputFileId,
        ["completion_window"] = job.CompletionWindow,
        ["status"] = job.Status,
        ["output_file_id"] = job.OutputFileId,
        ["error_file_id"] = job.ErrorFileId,
        ["created_at"] = job.CreatedAt.ToUnixTimeSeconds(),
        ["in_progress_at"] = job.InProgressAt?.ToUnixTimeSeconds(),
        ["expires_at"] = job.ExpiresAt.ToUnixTimeSeconds(),
        ["finalizing_at"] = job.FinalizingAt?.ToUnixTimeSeconds(),
        ["completed_at"] = job.CompletedAt?.ToUnixTimeSeconds(),
        ["failed_at"] = job.FailedAt?.ToUnixTimeSeconds(),
        ["expired_at"] = job.ExpiredAt?.ToUnixTimeSeconds(),
        ["cancelling_at"] = job.CancellingAt?.ToUnixTimeSeconds(),
        ["cancelled_at"] = job.CancelledAt?.ToUnixTimeSeconds(),
        ["request_counts"] = new JsonObject { ["total"] = job.Total, ["completed"] = job.Completed, ["failed"] = job.Failed },
        ["metadata"] = job.Metadata is null ? null : new JsonObject([.. job.Metadata.Select(m => KeyValuePair.Create(m.Key, (JsonNode?)m.Value))]),
        ["usage"] = job.Usage is not { } usage ? null : new JsonObject
        {
            ["input_tokens"] = usage.InputTokens,
            ["input_tokens_details"] = new JsonObject { ["cached_tokens"] = usage.CachedTokens },
            ["output_tokens"] = usage.OutputTokens,
            ["output_tokens_details"] = new JsonObject { ["reasoning_tokens"] = usage.ReasoningTokens },
            ["total_tokens"] = usage.InputTokens + usage.OutputTokens,
        },
    };

    /// <summary>OpenAI's cursor page: data, first_id, last_id, has_more.</summary>
    public static JsonObject List(IReadOnlyList<JsonObject> items, bool hasMore) => new()
    {
        ["object"] = "list",
        ["data"] = new JsonArray([.. items]),
        ["first_id"] = items.Count > 0 ? items[0]["id"]!.GetValue<string>() : null,
        ["last_id"] = items.Count > 0 ? items[^1]["id"]!.GetValue<string>() : null,
        ["has_more"] = hasMore,
    };
}
