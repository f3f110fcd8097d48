using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Appliance.Api.Batches;

namespace Appliance.Host.Batches;

/// <summary>
/// The Batch API's tables, in SQL both SQLite and PostgreSQL read: files (with their content), batches (their state as
/// JSON beside the columns that are queried or raced for: status, cancellation, lease) and each line's result while a
/// batch runs. Times are unix milliseconds.
/// </summary>
internal abstract class SqlBatchStore : IBatchStore, IDisposable
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>The states a batch is open in, as SQL literals (constants of ours, never input).</summary>
    private static readonly string OpenStates = string.Join(", ", BatchStatus.Open.Select(s => $"'{s}'"));

    /// <summary>The column type of file contents: BLOB or BYTEA.</summary>
    protected abstract string BinaryType { get; }

    protected abstract Task<DbConnection> OpenAsync(CancellationToken cancellation);

    public abstract void Dispose();

    protected string Schema => $"""
        CREATE TABLE IF NOT EXISTS batch_files (
            id TEXT PRIMARY KEY, owner TEXT NOT NULL, purpose TEXT NOT NULL, filename TEXT NOT NULL,
            bytes BIGINT NOT NULL, created_at BIGINT NOT NULL, content {BinaryType} NOT NULL);
        CREATE INDEX IF NOT EXISTS batch_files_owner ON batch_files (owner, created_at);
        CREATE TABLE IF NOT EXISTS batch_jobs (
            id TEXT PRIMARY KEY, owner TEXT NOT NULL, created_at BIGINT NOT NULL, status TEXT NOT NULL, input_file_id TEXT NOT NULL,
            cancelling_at BIGINT NULL, lease_node TEXT NULL, lease_until BIGINT NULL, not_before BIGINT NULL, ran_at BIGINT NULL,
            state TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS batch_jobs_input ON batch_jobs (input_file_id);
        CREATE INDEX IF NOT EXISTS batch_jobs_owner ON batch_jobs (owner, created_at);
        CREATE INDEX IF NOT EXISTS batch_jobs_status ON batch_jobs (status, created_at);
        CREATE TABLE IF NOT EXISTS batch_results (
            batch_id TEXT NOT NULL, line INTEGER NOT NULL, error INTEGER NOT NULL, body TEXT NOT NULL,
            PRIMARY KEY (batch_id, line));
        """;

    public async Task AddFileAsync(StoredFile file, byte[] content, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await InsertFileAsync(connection, null, file, content, cancellation);
    }

    public async Task<StoredFile?> FileAsync(string id, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = Command(connection, "SELECT id, owner, purpose, filename, bytes, created_at FROM batch_files WHERE id = @id", ("id", id));
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        return await reader.ReadAsync(cancellation) ? ReadFile(reader) : null;
    }

    public async Task<byte[]?> FileContentAsync(string id, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = Command(connection, "SELECT content FROM batch_files WHERE id = @id", ("id", id));
        return await command.ExecuteScalarAsync(cancellation) as byte[];
    }

    public async Task<IReadOnlyList<StoredFile>> FilesAsync(string owner, string? purpose, int limit, string? after, bool ascending, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        var order = ascending ? "ASC" : "DESC";
        var beyond = ascending ? ">" : "<";
        // The cursor is a file id; its (created_at, id) places the page, so files of the same millisecond are not lost.
        await using var command = Command(connection, $"""
            SELECT id, owner, purpose, filename, bytes, created_at FROM batch_files
            WHERE owner = @owner AND (@purpose IS NULL OR purpose = @purpose)
              AND (@after IS NULL OR (created_at, id) {beyond} (SELECT created_at, id FROM batch_files WHERE id = @after))
            ORDER BY created_at {order}, id {order} LIMIT @limit
            """, ("owner", owner), ("purpose", purpose), ("after", after), ("limit", limit));
        var files = new List<StoredFile>();
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation))
        {
            files.Add(ReadFile(reader));
        }

        return files;
    }

    public async Task<bool> DeleteFileAsync(string id, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        // Not while an open batch reads it: checked in the same statement, so that no batch created meanwhile loses it.
        await using var command = Command(connection, $"""
            DELETE FROM batch_files WHERE id = @id
              AND NOT EXISTS (SELECT 1 FROM batch_jobs j WHERE j.input_file_id = @id AND j.status IN ({OpenStates}))
            """, ("id", id));
        return await command.ExecuteNonQueryAsync(cancellation) > 0;
    }

    public async Task<bool> FileInUseAsync(string id, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = Command(connection, $"SELECT COUNT(*) FROM batch_jobs WHERE input_file_id = @id AND status IN ({OpenStates})", ("id", id));
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellation), CultureInfo.InvariantCulture) > 0;
    }

    public async Task AddBatchAsync(BatchJob job, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = Command(connection,
            "INSERT INTO batch_jobs (id, owner, created_at, status, input_file_id, state) VALUES (@id, @owner, @created, @status, @input, @state)",
            ("id", job.Id), ("owner", job.Owner), ("created", Millis(job.CreatedAt)), ("status", job.Status), ("input", job.InputFileId), ("state", JsonSerializer.Serialize(job, Json)));
        await command.ExecuteNonQueryAsync(cancellation);
    }

    public async Task<BatchJob?> BatchAsync(string id, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        var jobs = await ReadBatchesAsync(connection, "WHERE id = @id", cancellation, ("id", id));
        return jobs.Count == 0 ? null : await WithCountsAsync(connection, jobs[0], cancellation);
    }

    public async Task<IReadOnlyList<BatchJob>> BatchesAsync(string? owner, int limit, string? after, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        var jobs = await ReadBatchesAsync(connection, """
            WHERE (@owner IS NULL OR owner = @owner) AND (@after IS NULL OR (created_at, id) < (SELECT created_at, id FROM batch_jobs WHERE id = @after))
            ORDER BY created_at DESC, id DESC LIMIT @limit
            """, cancellation, ("owner", owner), ("after", after), ("limit", limit));
        var counted = new List<BatchJob>(jobs.Count);
        foreach (var job in jobs)
        {
            counted.Add(await WithCountsAsync(connection, job, cancellation));
        }

        return counted;
    }

    public async Task<int> OpenCountAsync(string owner, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = Command(connection, $"SELECT COUNT(*) FROM batch_jobs WHERE owner = @owner AND status IN ({OpenStates})", ("owner", owner));
        return Convert.ToInt32(await command.ExecuteScalarAsync(cancellation), CultureInfo.InvariantCulture);
    }

    public async Task<bool> OthersWaitAsync(string id, DateTimeOffset now, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = Command(connection, $"""
            SELECT COUNT(*) FROM batch_jobs WHERE id <> @id AND status IN ({OpenStates})
              AND (lease_until IS NULL OR lease_until < @now) AND (not_before IS NULL OR not_before <= @now)
            """, ("id", id), ("now", Millis(now)));
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellation), CultureInfo.InvariantCulture) > 0;
    }

    public async Task<bool> RequestCancelAsync(string id, DateTimeOffset now, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = Command(connection,
            "UPDATE batch_jobs SET status = @cancelling, cancelling_at = @now WHERE id = @id AND status IN (@validating, @running)",
            ("cancelling", BatchStatus.Cancelling), ("now", Millis(now)), ("id", id), ("validating", BatchStatus.Validating), ("running", BatchStatus.InProgress));
        return await command.ExecuteNonQueryAsync(cancellation) > 0;
    }

    public async Task<BatchJob?> LeaseNextAsync(string node, DateTimeOffset now, DateTimeOffset until, IReadOnlyCollection<string> skip, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        var candidates = await ReadBatchesAsync(connection, $"""
            WHERE status IN ({OpenStates}) AND (lease_until IS NULL OR lease_until < @now) AND (not_before IS NULL OR not_before <= @now)
            ORDER BY COALESCE(ran_at, 0), created_at, id LIMIT {8 + skip.Count}
            """, cancellation, ("now", Millis(now)));
        foreach (var candidate in candidates.Where(c => !skip.Contains(c.Id)))
        {
            // Only one node's update finds the lease still free (and the batch still open): the others move on.
            await using var take = Command(connection, $"""
                UPDATE batch_jobs SET lease_node = @node, lease_until = @until, ran_at = @now
                WHERE id = @id AND (lease_until IS NULL OR lease_until < @now) AND status IN ({OpenStates})
                """, ("node", node), ("until", Millis(until)), ("id", candidate.Id), ("now", Millis(now)));
            if (await take.ExecuteNonQueryAsync(cancellation) > 0)
            {
                // As it is now, not as it was read before the lease was taken (another node may have finished it).
                var taken = await ReadBatchesAsync(connection, "WHERE id = @id", cancellation, ("id", candidate.Id));
                return taken.Count == 1 ? taken[0] : null;
            }
        }

        return null;
    }

    public async Task<bool> RenewLeaseAsync(string id, string node, DateTimeOffset until, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = Command(connection, "UPDATE batch_jobs SET lease_until = @until WHERE id = @id AND lease_node = @node",
            ("until", Millis(until)), ("id", id), ("node", node));
        return await command.ExecuteNonQueryAsync(cancellation) > 0;
    }

    public async Task ReleaseLeaseAsync(string id, string node, CancellationToken cancellation, DateTimeOffset? notBefore = null)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = Command(connection,
            "UPDATE batch_jobs SET lease_node = NULL, lease_until = NULL, not_before = @notBefore WHERE id = @id AND lease_node = @node",
            ("id", id), ("node", node), ("notBefore", notBefore is { } at ? Millis(at) : new NullOf(System.Data.DbType.Int64)));
        await command.ExecuteNonQueryAsync(cancellation);
    }

    public async Task<bool> UpdateBatchAsync(BatchJob job, string expectedStatus, CancellationToken cancellation, string? node = null)
    {
        await using var connection = await OpenAsync(cancellation);
        return await UpdateAsync(connection, null, job, expectedStatus, node, cancellation);
    }

    public async Task AddResultAsync(string batchId, int line, bool error, string body, string node, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = Command(connection, """
            INSERT INTO batch_results (batch_id, line, error, body)
            SELECT @batch, @line, @error, @body WHERE EXISTS (SELECT 1 FROM batch_jobs WHERE id = @batch AND lease_node = @node)
            ON CONFLICT (batch_id, line) DO NOTHING
            """, ("batch", batchId), ("line", line), ("error", error ? 1 : 0), ("body", body), ("node", node));
        await command.ExecuteNonQueryAsync(cancellation);
    }

    public async Task<IReadOnlySet<int>> AnsweredAsync(string batchId, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = Command(connection, "SELECT line FROM batch_results WHERE batch_id = @batch", ("batch", batchId));
        var lines = new HashSet<int>();
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation))
        {
            lines.Add(Convert.ToInt32(reader.GetValue(0), CultureInfo.InvariantCulture));
        }

        return lines;
    }

    public async Task<IReadOnlyDictionary<int, BatchResult>> ResultsAsync(string batchId, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = Command(connection, "SELECT line, error, body FROM batch_results WHERE batch_id = @batch", ("batch", batchId));
        var results = new Dictionary<int, BatchResult>();
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation))
        {
            results[Convert.ToInt32(reader.GetValue(0), CultureInfo.InvariantCulture)] = new BatchResult(Convert.ToInt32(reader.GetValue(1), CultureInfo.InvariantCulture) != 0, reader.GetString(2));
        }

        return results;
    }

    public async Task<bool> FinishAsync(BatchJob job, string expectedStatus, IReadOnlyList<(StoredFile File, byte[] Content)> files, string? node, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        if (!await UpdateAsync(connection, transaction, job, expectedStatus, node, cancellation))
        {
            await transaction.RollbackAsync(cancellation);
            return false;
        }

        foreach (var (file, content) in files)
        {
            await InsertFileAsync(connection, transaction, file, content, cancellation);
        }

        await using (var drop = Command(connection, "DELETE FROM batch_results WHERE batch_id = @batch", ("batch", job.Id)))
        {
            drop.Transaction = transaction;
            await drop.ExecuteNonQueryAsync(cancellation);
        }

        await transaction.CommitAsync(cancellation);
        return true;
    }

    public async Task<(int Batches, int Files)> DeleteOlderThanAsync(DateTimeOffset before, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var batches = Command(connection, $"DELETE FROM batch_jobs WHERE created_at < @before AND status NOT IN ({OpenStates})", ("before", Millis(before)));
        var deletedBatches = await batches.ExecuteNonQueryAsync(cancellation);
        // A file still read by an open batch stays (a batch outlives its input's retention by at most its window).
        await using var files = Command(connection, $"""
            DELETE FROM batch_files WHERE created_at < @before
              AND NOT EXISTS (SELECT 1 FROM batch_jobs j WHERE j.input_file_id = batch_files.id AND j.status IN ({OpenStates}))
            """, ("before", Millis(before)));
        var deletedFiles = await files.ExecuteNonQueryAsync(cancellation);
        // Answers a node stored after its lease had gone and the batch was finished by another.
        await using var orphans = Command(connection, $"""
            DELETE FROM batch_results WHERE NOT EXISTS (SELECT 1 FROM batch_jobs j WHERE j.id = batch_results.batch_id AND j.status IN ({OpenStates}))
            """);
        await orphans.ExecuteNonQueryAsync(cancellation);
        return (deletedBatches, deletedFiles);
    }

    protected static DbCommand Command(DbConnection connection, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value is null or NullOf ? DBNull.Value : value;
            if (value is null or NullOf)
            {
                // PostgreSQL must know a NULL parameter's type to compare or store it: text unless said otherwise.
                parameter.DbType = value is NullOf typed ? typed.Type : System.Data.DbType.String;
            }

            command.Parameters.Add(parameter);
        }

        return command;
    }

    /// <summary>A NULL of a type other than text.</summary>
    private sealed record NullOf(System.Data.DbType Type);

    private static async Task InsertFileAsync(DbConnection connection, DbTransaction? transaction, StoredFile file, byte[] content, CancellationToken cancellation)
    {
        await using var command = Command(connection, """
            INSERT INTO batch_files (id, owner, purpose, filename, bytes, created_at, content)
            VALUES (@id, @owner, @purpose, @filename, @bytes, @created, @content) ON CONFLICT (id) DO NOTHING
            """,
            ("id", file.Id), ("owner", file.Owner), ("purpose", file.Purpose), ("filename", file.Filename), ("bytes", file.Bytes),
            ("created", Millis(file.CreatedAt)), ("content", content));
        command.Transaction = transaction;
        await command.ExecuteNonQueryAsync(cancellation);
    }

    private static async Task<bool> UpdateAsync(DbConnection connection, DbTransaction? transaction, BatchJob job, string expectedStatus, string? node, CancellationToken cancellation)
    {
        await using var command = Command(connection,
            "UPDATE batch_jobs SET status = @status, state = @state WHERE id = @id AND status = @expected AND (@node IS NULL OR lease_node = @node)",
            ("status", job.Status), ("state", JsonSerializer.Serialize(job, Json)), ("id", job.Id), ("expected", expectedStatus), ("node", node));
        command.Transaction = transaction;
        return await command.ExecuteNonQueryAsync(cancellation) > 0;
    }

    private static async Task<List<BatchJob>> ReadBatchesAsync(DbConnection connection, string where, CancellationToken cancellation, params (string, object?)[] parameters)
    {
        await using var command = Command(connection, $"SELECT status, cancelling_at, state FROM batch_jobs {where}", parameters);
        var jobs = new List<BatchJob>();
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation))
        {
            var job = JsonSerializer.Deserialize<BatchJob>(reader.GetString(2), Json)!;
            // The columns are the truth for what a cancellation changes without the runner.
            jobs.Add(job with
            {
                Status = reader.GetString(0),
                CancellingAt = job.CancellingAt ?? (reader.IsDBNull(1) ? null : FromMillis(Convert.ToInt64(reader.GetValue(1), CultureInfo.InvariantCulture))),
            });
        }

        return jobs;
    }

    /// <summary>A running batch's counts come from its results so far; a finished one keeps those it ended with.</summary>
    private static async Task<BatchJob> WithCountsAsync(DbConnection connection, BatchJob job, CancellationToken cancellation)
    {
        if (job.Status is not (BatchStatus.InProgress or BatchStatus.Cancelling or BatchStatus.Finalizing))
        {
            return job;
        }

        await using var command = Command(connection, "SELECT error, COUNT(*) FROM batch_results WHERE batch_id = @batch GROUP BY error", ("batch", job.Id));
        int completed = 0, failed = 0;
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation))
        {
            var count = Convert.ToInt32(reader.GetValue(1), CultureInfo.InvariantCulture);
            if (Convert.ToInt32(reader.GetValue(0), CultureInfo.InvariantCulture) != 0)
            {
                failed = count;
            }
            else
            {
                completed = count;
            }
        }

        return job with { Completed = completed, Failed = failed };
    }

    private static StoredFile ReadFile(DbDataReader reader) => new(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetString(3),
        Convert.ToInt64(reader.GetValue(4), CultureInfo.InvariantCulture), FromMillis(Convert.ToInt64(reader.GetValue(5), CultureInfo.InvariantCulture)));

    private static long Millis(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    private static DateTimeOffset FromMillis(long millis) => DateTimeOffset.FromUnixTimeMilliseconds(millis);
}
