namespace Appliance.Api.Batches;

/// <summary>
/// A file kept for the Batch API: an uploaded input (purpose "batch") or a finished batch's output or errors (purpose
/// "batch_output"). Only its owner sees it.
/// </summary>
public sealed record StoredFile(string Id, string Owner, string Purpose, string Filename, long Bytes, DateTimeOffset CreatedAt)
{
    public const string BatchInput = "batch";
    public const string BatchOutput = "batch_output";

    public static string NewId() => $"file-{Guid.NewGuid():N}";
}
