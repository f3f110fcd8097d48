using System.Globalization;
using System.Text.Json;
using Appliance.Audit.Chain;
using Microsoft.Data.Sqlite;

namespace Appliance.Audit.Stores;

/// <summary>
/// The embedded default: one SQLite file in write-ahead-log mode with synchronous=FULL, so that an entry whose append
/// returned survives a crash of the process or of the machine. Group commit (in <see cref="AuditLog"/>) pays one
/// fsync per batch, not per request.
/// </summary>
public sealed class SqliteAuditStore : IAuditStore
{
    private const string Columns =
        "seq, node, time, kind, request_id, subject, username, client, team, roles, source_ip, method, endpoint, model, model_digest, classification, "
        + "status, error_code, finish_reason, prompt_tokens, completion_tokens, queue_ms, ttft_ms, duration_ms, detail, prev_hash, hash";

    private readonly SqliteConnection _connection;
    private readonly Lock _gate = new();

    public SqliteAuditStore(string path, long? maxSizeBytes = null)
        : this(path, readOnly: false)
    {
        Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
        Execute("""
            CREATE TABLE IF NOT EXISTS audit_entries (
                seq INTEGER NOT NULL, node TEXT NOT NULL, time TEXT NOT NULL, kind TEXT NOT NULL, request_id TEXT, subject TEXT,
                username TEXT, client TEXT, team TEXT, roles TEXT NOT NULL, source_ip TEXT, method TEXT, endpoint TEXT, model TEXT,
                model_digest TEXT, classification TEXT, status INTEGER, error_code TEXT, finish_reason TEXT, prompt_tokens INTEGER,
                completion_tokens INTEGER, queue_ms REAL, ttft_ms REAL, duration_ms REAL, detail TEXT, prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL, PRIMARY KEY (node, seq));
            CREATE INDEX IF NOT EXISTS audit_entries_time ON audit_entries (time);
            CREATE INDEX IF NOT EXISTS audit_entries_user ON audit_entries (username);
            CREATE TABLE IF NOT EXISTS audit_checkpoints (
                node TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL, time TEXT NOT NULL, key_id TEXT NOT NULL,
                signature TEXT NOT NULL, PRIMARY KEY (node, seq));
            """);
        if (maxSizeBytes is { } limit)
        {
            // A size cap (a disk quota in effect): when reached, appends fail and the appliance refuses new requests.
            var pageSize = Convert.ToInt64(Scalar("PRAGMA page_size;"), CultureInfo.InvariantCulture);
            Execute($"PRAGMA max_page_count={Math.Max(1, limit / pageSize)};");
        }
    }

    private SqliteAuditStore(string path, bool readOnly)
    {
        if (!readOnly)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        }

        _connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path, Pooling = false, Mode = readOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWriteCreate,
        }.ToString());
        _connection.Open();
    }

    public string Name => "sqlite";

    /// <summary>A store opened for reading only, as the offline verifier does: it changes nothing in the file.</summary>
    public static SqliteAuditStore OpenReadOnly(string path) => new(path, readOnly: true);

    public (long Sequence, string Hash)? Head(string node)
    {
        lock (_gate)
        {
            using var command = Command("SELECT seq, hash FROM audit_entries WHERE node = $node ORDER BY seq DESC LIMIT 1", ("$node", node));
            using var reader = command.ExecuteReader();
            return reader.Read() ? (reader.GetInt64(0), reader.GetString(1)) : null;
        }
    }

    public void Append(IReadOnlyList<AuditEntry> entries, Checkpoint? checkpoint)
    {
        lock (_gate)
        {
            using var transaction = _connection.BeginTransaction();
            using var insert = _connection.CreateCommand();
            insert.Transaction = transaction;
            insert.CommandText = $"INSERT INTO audit_entries ({Columns}) VALUES ({string.Join(", ", Columns.Split(", ").Select(c => "$" + c))})";
            foreach (var column in Columns.Split(", "))
            {
                insert.Parameters.Add(new SqliteParameter("$" + column, null));
            }

            foreach (var entry in entries)
            {
                Bind(insert, entry);
                insert.ExecuteNonQuery();
            }

            if (checkpoint is not null)
            {
                using var sign = _connection.CreateCommand();
                sign.Transaction = transaction;
                sign.CommandText = "INSERT INTO audit_checkpoints (node, seq, hash, time, key_id, signature) VALUES ($node, $seq, $hash, $time, $key, $signature)";
                sign.Parameters.AddWithValue("$node", checkpoint.Node);
                sign.Parameters.AddWithValue("$seq", checkpoint.Sequence);
                sign.Parameters.AddWithValue("$hash", checkpoint.Hash);
                sign.Parameters.AddWithValue("$time", CanonicalJson.Time(checkpoint.Time));
                sign.Parameters.AddWithValue("$key", checkpoint.KeyId);
                sign.Parameters.AddWithValue("$signature", checkpoint.Signature);
                sign.ExecuteNonQuery();
            }

            transaction.Commit();
        }
    }

    public IReadOnlyList<AuditEntry> Query(string node, AuditQuery query)
    {
        var filters = new List<string> { "node = $node", "seq > $after" };
        var parameters = new List<(string, object?)> { ("$node", node), ("$after", query.AfterSequence) };
        Filter(filters, parameters, "time >= $from", "$from", query.From is { } from ? CanonicalJson.Time(from) : null);
        Filter(filters, parameters, "time < $to", "$to", query.To is { } to ? CanonicalJson.Time(to) : null);
        Filter(filters, parameters, "username = $user", "$user", query.Username);
        Filter(filters, parameters, "client = $client", "$client", query.Client);
        Filter(filters, parameters, "model = $model", "$model", query.Model);
        Filter(filters, parameters, "kind = $kind", "$kind", query.Kind);
        if (query.Outcome == "accepted")
        {
            filters.Add("status < 400");
        }
        else if (query.Outcome == "refused")
        {
            filters.Add("status >= 400");
        }

        parameters.Add(("$limit", query.Limit));
        lock (_gate)
        {
            using var command = Command($"SELECT {Columns} FROM audit_entries WHERE {string.Join(" AND ", filters)} ORDER BY seq LIMIT $limit", [.. parameters]);
            return [.. ReadAll(command)];
        }
    }

    public IEnumerable<AuditEntry> Chain(string node)
    {
        // Pages of a few thousand, so that a long chain streams without holding the lock for its whole length.
        var after = 0L;
        while (true)
        {
            var page = Query(node, new AuditQuery { AfterSequence = after, Limit = 5000 });
            foreach (var entry in page)
            {
                yield return entry;
            }

            if (page.Count < 5000)
            {
                yield break;
            }

            after = page[^1].Sequence;
        }
    }

    public IReadOnlyList<UsageRow> Usage(string node, DateTimeOffset from, DateTimeOffset to, string groupBy)
    {
        var column = groupBy switch
        {
            "user" => "username",
            "team" => "team",
            "model" => "model",
            "client" => "client",
            _ => throw new ArgumentOutOfRangeException(nameof(groupBy), groupBy, "group by user, team, model or client"),
        };
        lock (_gate)
        {
            using var command = Command(
                $"SELECT substr(time, 1, 10) AS day, {column}, COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) "
                + "FROM audit_entries WHERE node = $node AND kind = $kind AND model IS NOT NULL AND time >= $from AND time < $to "
                + $"GROUP BY day, {column} ORDER BY day, {column}",
                ("$node", node), ("$kind", AuditKinds.Completed), ("$from", CanonicalJson.Time(from)), ("$to", CanonicalJson.Time(to)));
            using var reader = command.ExecuteReader();
            var rows = new List<UsageRow>();
            while (reader.Read())
            {
                rows.Add(new UsageRow(reader.GetString(0), Text(reader, 1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4)));
            }

            return rows;
        }
    }

    /// <summary>The nodes whose chains this store holds.</summary>
    public IReadOnlyList<string> Nodes()
    {
        lock (_gate)
        {
            using var command = Command("SELECT DISTINCT node FROM audit_entries ORDER BY node");
            using var reader = command.ExecuteReader();
            var nodes = new List<string>();
            while (reader.Read())
            {
                nodes.Add(reader.GetString(0));
            }

            return nodes;
        }
    }

    public IReadOnlyList<Checkpoint> Checkpoints(string node)
    {
        lock (_gate)
        {
            using var command = Command("SELECT node, seq, hash, time, key_id, signature FROM audit_checkpoints WHERE node = $node ORDER BY seq", ("$node", node));
            using var reader = command.ExecuteReader();
            var checkpoints = new List<Checkpoint>();
            while (reader.Read())
            {
                checkpoints.Add(new Checkpoint(reader.GetString(0), reader.GetInt64(1), reader.GetString(2), ParseTime(reader.GetString(3)), reader.GetString(4), reader.GetString(5)));
            }

            return checkpoints;
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _connection.Dispose();
        }
    }

    internal static DateTimeOffset ParseTime(string text) =>
        DateTimeOffset.ParseExact(text, "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    private static void Bind(SqliteCommand insert, AuditEntry entry)
    {
        var r = entry.Record;
        object?[] values =
        [
            entry.Sequence, entry.Node, CanonicalJson.Time(r.Time), r.Kind, r.RequestId, r.Subject, r.Username, r.Client, r.Team,
            JsonSerializer.Serialize(r.Roles), r.SourceIp, r.Method, r.Endpoint, r.Model, r.ModelDigest, r.Classification, r.Status,
            r.ErrorCode, r.FinishReason, r.PromptTokens, r.CompletionTokens, r.QueueMs, r.TimeToFirstTokenMs, r.DurationMs, r.Detail,
            entry.PreviousHash, entry.Hash,
        ];
        for (var i = 0; i < values.Length; i++)
        {
            insert.Parameters[i].Value = values[i] ?? DBNull.Value;
        }
    }

    private static IEnumerable<AuditEntry> ReadAll(SqliteCommand command)
    {
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            var record = new AuditRecord
            {
                Time = ParseTime(reader.GetString(2)),
                Kind = reader.GetString(3),
                RequestId = Text(reader, 4),
                Subject = Text(reader, 5),
                Username = Text(reader, 6),
                Client = Text(reader, 7),
                Team = Text(reader, 8),
                Roles = JsonSerializer.Deserialize<string[]>(reader.GetString(9)) ?? [],
                SourceIp = Text(reader, 10),
                Method = Text(reader, 11),
                Endpoint = Text(reader, 12),
                Model = Text(reader, 13),
                ModelDigest = Text(reader, 14),
                Classification = Text(reader, 15),
                Status = reader.IsDBNull(16) ? null : reader.GetInt32(16),
                ErrorCode = Text(reader, 17),
                FinishReason = Text(reader, 18),
                PromptTokens = reader.IsDBNull(19) ? null : reader.GetInt32(19),
                CompletionTokens = reader.IsDBNull(20) ? null : reader.GetInt32(20),
                QueueMs = reader.IsDBNull(21) ? null : reader.GetDouble(21),
                TimeToFirstTokenMs = reader.IsDBNull(22) ? null : reader.GetDouble(22),
                DurationMs = reader.IsDBNull(23) ? null : reader.GetDouble(23),
                Detail = Text(reader, 24),
            };
            yield return new AuditEntry(reader.GetInt64(0), reader.GetString(1), record, reader.GetString(25), reader.GetString(26));
        }
    }

    private static string? Text(SqliteDataReader reader, int column) => reader.IsDBNull(column) ? null : reader.GetString(column);

    private static void Filter(List<string> filters, List<(string, object?)> parameters, string clause, string name, string? value)
    {
        if (value is not null)
        {
            filters.Add(clause);
            parameters.Add((name, value));
        }
    }

    private SqliteCommand Command(string sql, params (string Name, object? Value)[] parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private object? Scalar(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
