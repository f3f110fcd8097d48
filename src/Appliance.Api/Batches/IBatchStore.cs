namespace Appliance.Api.Batches;

/// <summary>
/// Where the Batch API keeps files, batches and the results of their requests: a SQLite file on a single node, the
/// cluster's PostgreSQL when the audit log is there (so any node answers for any batch, and another node takes over a
/// batch whose node stopped).
/// </summary>
public interface IBatchStore
{
    Task AddFileAsync(StoredFile file, byte[] content, CancellationToken cancellation);

    Task<StoredFile?> FileAsync(string id, CancellationToken cancellation);

    Task<byte[]?> FileContentAsync(string id, CancellationToken cancellation);

    /// <summary>The owner's files, newest first unless <paramref name="ascending"/>, after the file <paramref name="after"/>.</summary>
    Task<IReadOnlyList<StoredFile>> FilesAsync(string owner, string? purpose, int limit, string? after, bool ascending, CancellationToken cancellation);

    /// <summary>Deletes the file unless an open batch reads it; false when nothing was deleted.</summary>
    Task<bool> DeleteFileAsync(string id, CancellationToken cancellation);

    /// <summary>Whether a batch that is not finished reads the file (it may not be deleted meanwhile).</summary>
    Task<bool> FileInUseAsync(string id, CancellationToken cancellation);

    Task AddBatchAsync(BatchJob job, CancellationToken cancellation);

    /// <summary>The batch, with its request counts as of now while it runs.</summary>
    Task<BatchJob?> BatchAsync(string id, CancellationToken cancellation);

    /// <summary>The owner's batches (every owner's with null), newest first, after the batch <paramref name="after"/>.</summary>
    Task<IReadOnlyList<BatchJob>> BatchesAsync(string? owner, int limit, string? after, CancellationToken cancellation);

    /// <summary>How many of the owner's batches are open (validating, running, cancelling or finalizing).</summary>
    Task<int> OpenCountAsync(string owner, CancellationToken cancellation);

    /// <summary>Whether another open batch waits for a node (not leased, and not put off past <paramref name="now"/>).</summary>
    Task<bool> OthersWaitAsync(string id, DateTimeOffset now, CancellationToken cancellation);

    /// <summary>Asks a validating or running batch to stop; false when it is in no such state.</summary>
    Task<bool> RequestCancelAsync(string id, DateTimeOffset now, CancellationToken cancellation);

    /// <summary>
    /// Takes the open batch no node holds (or whose node's lease ran out) that was run least recently (never, first;
    /// then the oldest) for <paramref name="node"/> until <paramref name="until"/>, passing over those in
    /// <paramref name="skip"/>; its state as taken, or null.
    /// </summary>
    Task<BatchJob?> LeaseNextAsync(string node, DateTimeOffset now, DateTimeOffset until, IReadOnlyCollection<string> skip, CancellationToken cancellation);

    /// <summary>Extends the node's lease; false when the node lost it (another node took the batch over).</summary>
    Task<bool> RenewLeaseAsync(string id, string node, DateTimeOffset until, CancellationToken cancellation);

    /// <summary>Lets the batch go; with <paramref name="notBefore"/>, no node takes it again before then.</summary>
    Task ReleaseLeaseAsync(string id, string node, CancellationToken cancellation, DateTimeOffset? notBefore = null);

    /// <summary>
    /// Writes the batch's new state, only while it still is in <paramref name="expectedStatus"/> (and, with a
    /// <paramref name="node"/>, only while that node holds the lease).
    /// </summary>
    Task<bool> UpdateBatchAsync(BatchJob job, string expectedStatus, CancellationToken cancellation, string? node = null);

    /// <summary>
    /// The answer of one line of the batch's input (0-based), kept only while <paramref name="node"/> holds the lease;
    /// a line answered once keeps its first answer.
    /// </summary>
    Task AddResultAsync(string batchId, int line, bool error, string body, string node, CancellationToken cancellation);

    /// <summary>The lines of the batch that have an answer.</summary>
    Task<IReadOnlySet<int>> AnsweredAsync(string batchId, CancellationToken cancellation);

    Task<IReadOnlyDictionary<int, BatchResult>> ResultsAsync(string batchId, CancellationToken cancellation);

    /// <summary>
    /// In one transaction: stores the output files, writes the batch's final state (while it still is in
    /// <paramref name="expectedStatus"/>, and <paramref name="node"/> holds the lease) and drops its line results.
    /// False when the state or the lease had changed.
    /// </summary>
    Task<bool> FinishAsync(BatchJob job, string expectedStatus, IReadOnlyList<(StoredFile File, byte[] Content)> files, string? node, CancellationToken cancellation);

    /// <summary>
    /// Deletes finished batches and files created before <paramref name="before"/> (a file an open batch reads stays),
    /// and line results no open batch owns; how many batches and files.
    /// </summary>
    Task<(int Batches, int Files)> DeleteOlderThanAsync(DateTimeOffset before, CancellationToken cancellation);
}

/// <summary>One line's answer: the output (or error) file's line for it.</summary>
public sealed record BatchResult(bool Error, string Body);
