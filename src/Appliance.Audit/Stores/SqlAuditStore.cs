using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Appliance.Audit.Chain;

namespace Appliance.Audit.Stores;

/// <summary>
/// The audit tables and their queries in plain SQL that SQLite and PostgreSQL both accept. Each node appends to its own
/// chain (primary key node + sequence), so nodes sharing one database never contend for a chain head.
/// </summary>
public abstract class SqlAuditStore : IAuditStore
{
    private const string Columns =
        "seq, node, time, kind, request_id, subject, username, client, team, roles, source_ip, method, endpoint, model, model_digest, "
        + "classification, status, error_code, finish_reason, prompt_tokens, completion_tokens, queue_ms, ttft_ms, duration_ms, detail, content, prev_hash, hash";

    private static readonly string[] ColumnNames = Columns.Split(", ");

    public abstract string Name { get; }

    /// <summary>Runs <paramref name="work"/> on an open connection of the store.</summary>
    protected abstract T WithConnection<T>(Func<DbConnection, T> work);

    /// <summary>Where reads run: the writer's connection unless the store has a separate one for readers.</summary>
    protected virtual T WithReadConnection<T>(Func<DbConnection, T> work) => WithConnection(work);

    /// <summary>
    /// The index of witness entries (a partial index: only they are in it), apart from <see cref="Schema"/> because
    /// PostgreSQL builds it concurrently, without holding up the other nodes' writes on a long audit table.
    /// </summary>
    protected const string WitnessIndex = $"audit_entries_witness ON audit_entries (node, seq) WHERE kind = '{AuditKinds.Witness}'";

    /// <summary>
    /// The indexes made apart from <see cref="Schema"/>, by name: PostgreSQL builds them concurrently in the background.
    /// A caller's own usage this month (the console's welcome page) is read by (node, username, time): without it, one
    /// key used by a service for millions of requests costs a scan of its whole history per visit.
    /// </summary>
    protected static readonly (string Name, string Definition)[] BackgroundIndexes =
    [
        ("audit_entries_witness", WitnessIndex),
        (UserTimeIndexName, UserTimeIndex),
    ];

    protected const string UserTimeIndexName = "audit_entries_user_time";

    protected const string UserTimeIndex = $"{UserTimeIndexName} ON audit_entries (node, username, time)";

    /// <summary>Every table and index <see cref="Schema"/> creates: a store that finds them all need not run it (keep in step).</summary>
    protected static readonly string[] SchemaObjects =
        ["audit_entries", "audit_entries_time", "audit_entries_user", "audit_retention", "audit_checkpoints"];

    /// <summary>The schema: <paramref name="integer"/>, <paramref name="real"/> name the dialect's 64-bit integer and double types.</summary>
    protected static string Schema(string integer, string real) => $"""
        CREATE TABLE IF NOT EXISTS audit_entries (
            seq {integer} NOT NULL, node TEXT NOT NULL, time TEXT NOT NULL, kind TEXT NOT NULL, request_id TEXT, subject TEXT,
            username TEXT, client TEXT, team TEXT, roles TEXT NOT NULL, source_ip TEXT, method TEXT, endpoint TEXT, model TEXT,
            model_digest TEXT, classification TEXT, status INTEGER, error_code TEXT, finish_reason TEXT, prompt_tokens INTEGER,
            completion_tokens INTEGER, queue_ms {real}, ttft_ms {real}, duration_ms {real}, detail TEXT, content TEXT, prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL, PRIMARY KEY (node, seq));
        CREATE INDEX IF NOT EXISTS audit_entries_time ON audit_entries (node, time);
        CREATE INDEX IF NOT EXISTS audit_entries_user ON audit_entries (node, username);
        CREATE TABLE IF NOT EXISTS audit_retention (
            node TEXT NOT NULL, through_seq {integer} NOT NULL, through_hash TEXT NOT NULL, removed_entries {integer} NOT NULL,
            oldest_remaining TEXT NOT NULL, time TEXT NOT NULL, key_id TEXT NOT NULL, signature TEXT NOT NULL, PRIMARY KEY (node, through_seq));
        CREATE TABLE IF NOT EXISTS audit_checkpoints (
            node TEXT NOT NULL, seq {integer} NOT NULL, hash TEXT NOT NULL, time TEXT NOT NULL, key_id TEXT NOT NULL,
            signature TEXT NOT NULL, PRIMARY KEY (node, seq));
        """;

    public (long Sequence, string Hash)? Head(string node) => WithConnection<(long, string)?>(connection =>
    {
        using var command = Command(connection, "SELECT seq, hash FROM audit_entries WHERE node = @node ORDER BY seq DESC LIMIT 1", ("node", node));
        command.CommandTimeout = WriteTimeoutSeconds ?? command.CommandTimeout; // the writer asks it after a failed append
        using var reader = command.ExecuteReader();
        return reader.Read() ? (reader.GetInt64(0), reader.GetString(1)) : null;
    });

    /// <summary>Called before anything is written: a store that must not write any more throws.</summary>
    protected virtual void BeforeWrite()
    {
    }

    /// <summary>
    /// The longest one statement of an append (or the head read that settles a failed one) may take, in seconds; null:
    /// the provider's default. Reads for people (exports, reports) and retention keep the default.
    /// </summary>
    protected int? WriteTimeoutSeconds { get; init; }

    public void Append(IReadOnlyList<AuditEntry> entries, Checkpoint? checkpoint) => WithConnection(connection =>
    {
        BeforeWrite();
        using var transaction = connection.BeginTransaction();
        using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandTimeout = WriteTimeoutSeconds ?? insert.CommandTimeout;
        insert.CommandText = $"INSERT INTO audit_entries ({Columns}) VALUES ({string.Join(", ", ColumnNames.Select(c => "@" + c))})";
        foreach (var column in ColumnNames)
        {
            var parameter = insert.CreateParameter();
            parameter.ParameterName = column;
            insert.Parameters.Add(parameter);
        }

        foreach (var entry in entries)
        {
            Bind(insert, entry);
            insert.ExecuteNonQuery();
        }

        if (checkpoint is not null)
        {
            using var sign = Command(connection, "INSERT INTO audit_checkpoints (node, seq, hash, time, key_id, signature) VALUES (@node, @seq, @hash, @time, @key, @signature)",
                ("node", checkpoint.Node), ("seq", checkpoint.Sequence), ("hash", checkpoint.Hash), ("time", CanonicalJson.Time(checkpoint.Time)),
                ("key", checkpoint.KeyId), ("signature", checkpoint.Signature));
            sign.Transaction = transaction;
            sign.CommandTimeout = WriteTimeoutSeconds ?? sign.CommandTimeout;
            sign.ExecuteNonQuery();
        }

        transaction.Commit();
        return true;
    });

    public IReadOnlyList<AuditEntry> Query(string node, AuditQuery query)
    {
        var filters = new List<string> { "node = @node", "seq > @after" };
        var parameters = new List<(string, object?)> { ("node", node), ("after", query.AfterSequence) };
        Filter(filters, parameters, "time >= @from", "from", query.From is { } from ? CanonicalJson.Time(from) : null);
        Filter(filters, parameters, "time < @to", "to", query.To is { } to ? CanonicalJson.Time(to) : null);
        Filter(filters, parameters, "username = @user", "user", query.Username);
        Filter(filters, parameters, "client = @client", "client", query.Client);
        Filter(filters, parameters, "model = @model", "model", query.Model);
        Filter(filters, parameters, "kind = @kind", "kind", query.Kind);
        if (query.BeforeSequence is { } before)
        {
            filters.Add("seq < @before");
            parameters.Add(("before", before));
        }

        if (query.Outcome == "accepted")
        {
            filters.Add("status < 400");
        }
        else if (query.Outcome == "refused")
        {
            filters.Add("status >= 400");
        }

        parameters.Add(("limit", query.Limit));
        return WithReadConnection(connection =>
        {
            var order = query.NewestFirst ? "seq DESC" : "seq";
            using var command = Command(connection, $"SELECT {Columns} FROM audit_entries WHERE {string.Join(" AND ", filters)} ORDER BY {order} LIMIT @limit", [.. parameters]);
            return (IReadOnlyList<AuditEntry>)[.. ReadAll(command)];
        });
    }

    public IEnumerable<AuditEntry> Chain(string node, long afterSequence = 0)
    {
        // Pages of a few thousand, so that a long chain streams without holding a connection for its whole length.
        var after = afterSequence;
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

    // Times are stored in one fixed-width UTC form (CanonicalJson.Time), so the text's maximum is the latest time.
    public DateTimeOffset? NewestTime(string node, long afterSequence, long throughSequence) => WithReadConnection(connection =>
    {
        using var command = Command(connection, "SELECT MAX(time) FROM audit_entries WHERE node = @node AND seq > @after AND seq <= @through",
            ("node", node), ("after", afterSequence), ("through", throughSequence));
        return command.ExecuteScalar() is string time ? ParseTime(time) : (DateTimeOffset?)null;
    });

    public IReadOnlyList<Checkpoint> Checkpoints(string node) => WithReadConnection(connection =>
    {
        using var command = Command(connection, "SELECT node, seq, hash, time, key_id, signature FROM audit_checkpoints WHERE node = @node ORDER BY seq", ("node", node));
        using var reader = command.ExecuteReader();
        var checkpoints = new List<Checkpoint>();
        while (reader.Read())
        {
            checkpoints.Add(new Checkpoint(reader.GetString(0), reader.GetInt64(1), reader.GetString(2), ParseTime(reader.GetString(3)), reader.GetString(4), reader.GetString(5)));
        }

        return (IReadOnlyList<Checkpoint>)checkpoints;
    });

    public AuditEntry? LatestWitness(string node, long throughSequence) => WithReadConnection(connection =>
    {
        // The kind as a literal, so that the partial index of witness entries serves it however long the chain.
        using var command = Command(connection,
            $"SELECT {Columns} FROM audit_entries WHERE node = @node AND kind = '{AuditKinds.Witness}' AND seq <= @through ORDER BY seq DESC LIMIT 1",
            ("node", node), ("through", throughSequence));
        return ReadAll(command).FirstOrDefault();
    });

    public IReadOnlyList<Checkpoint> LatestCheckpoints() => WithReadConnection(connection =>
    {
        // One probe per node along the primary key, as Nodes() does, then each node's last checkpoint by the same key.
        using var command = Command(connection,
            $"WITH RECURSIVE {SkipScan("checkpoint_nodes", "audit_checkpoints")} SELECT c.node, c.seq, c.hash, c.time, c.key_id, c.signature "
            + "FROM checkpoint_nodes n JOIN audit_checkpoints c ON c.node = n.node "
            + "AND c.seq = (SELECT l.seq FROM audit_checkpoints l WHERE l.node = n.node ORDER BY l.seq DESC LIMIT 1) ORDER BY c.node");
        using var reader = command.ExecuteReader();
        var checkpoints = new List<Checkpoint>();
        while (reader.Read())
        {
            checkpoints.Add(new Checkpoint(reader.GetString(0), reader.GetInt64(1), reader.GetString(2), ParseTime(reader.GetString(3)), reader.GetString(4), reader.GetString(5)));
        }

        return (IReadOnlyList<Checkpoint>)checkpoints;
    });

    public RetentionRecord? Retention(string node) => WithReadConnection(connection =>
    {
        using var command = Command(connection,
            "SELECT node, through_seq, through_hash, removed_entries, oldest_remaining, time, key_id, signature FROM audit_retention WHERE node = @node ORDER BY through_seq DESC LIMIT 1",
            ("node", node));
        using var reader = command.ExecuteReader();
        return reader.Read()
            ? new RetentionRecord(reader.GetString(0), reader.GetInt64(1), reader.GetString(2), reader.GetInt64(3), ParseTime(reader.GetString(4)),
                ParseTime(reader.GetString(5)), reader.GetString(6), reader.GetString(7))
            : null;
    });

    public void ApplyRetention(RetentionRecord record) => WithConnection(connection =>
    {
        BeforeWrite();
        using var transaction = connection.BeginTransaction();
        foreach (var (sql, parameters) in new (string, (string, object?)[])[]
        {
            ("INSERT INTO audit_retention (node, through_seq, through_hash, removed_entries, oldest_remaining, time, key_id, signature) "
                + "VALUES (@node, @through, @hash, @removed, @oldest, @time, @key, @signature)",
                [("node", record.Node), ("through", record.ThroughSequence), ("hash", record.ThroughHash), ("removed", record.RemovedEntries),
                    ("oldest", CanonicalJson.Time(record.OldestRemaining)), ("time", CanonicalJson.Time(record.Time)), ("key", record.KeyId), ("signature", record.Signature)]),
            ("DELETE FROM audit_entries WHERE node = @node AND seq <= @through", [("node", record.Node), ("through", record.ThroughSequence)]),
            ("DELETE FROM audit_checkpoints WHERE node = @node AND seq <= @through", [("node", record.Node), ("through", record.ThroughSequence)]),
        })
        {
            using var command = Command(connection, sql, parameters);
            command.Transaction = transaction;
            command.ExecuteNonQuery();
        }

        transaction.Commit();
        return true;
    });

    public IReadOnlyList<UsageRow> Usage(string? node, DateTimeOffset from, DateTimeOffset to, string groupBy, IReadOnlyList<string>? teams = null, string? user = null)
    {
        var column = groupBy switch
        {
            "user" => "username",
            "team" => "team",
            "model" => "model",
            "client" => "client",
            _ => throw new ArgumentOutOfRangeException(nameof(groupBy), groupBy, "group by user, team, model or client"),
        };
        // Every chain as "node IN (...)" rather than no condition, so that the (node, time) index still bounds the scan.
        var nodes = node is null ? Nodes() : [node];
        if (nodes.Count == 0)
        {
            return [];
        }

        return WithReadConnection(connection =>
        {
            var teamNames = teams ?? [];
            var teamFilter = teams is null ? string.Empty
                : teamNames.Count == 0 ? " AND 1 = 0"
                : $" AND team IN ({string.Join(", ", teamNames.Select((_, i) => $"@team{i}"))})";
            var userFilter = user is null ? string.Empty : " AND username = @user";
            using var command = Command(connection,
                $"SELECT substr(time, 1, 10) AS day, {column}, model, COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) "
                + $"FROM audit_entries WHERE node IN ({string.Join(", ", nodes.Select((_, i) => $"@node{i}"))}) AND kind = @kind AND model IS NOT NULL AND time >= @from AND time < @to{teamFilter}{userFilter} "
                + $"GROUP BY substr(time, 1, 10), {column}, model ORDER BY 1, 2, 3",
                [.. nodes.Select((chain, i) => ($"node{i}", (object?)chain)), ("kind", AuditKinds.Completed), ("from", CanonicalJson.Time(from)), ("to", CanonicalJson.Time(to)),
                    .. teamNames.Select((team, i) => ($"team{i}", (object?)team)), .. (user is null ? [] : new[] { ("user", (object?)user) })]);
            using var reader = command.ExecuteReader();
            var rows = new List<UsageRow>();
            while (reader.Read())
            {
                rows.Add(new UsageRow(reader.GetString(0), Text(reader, 1), reader.GetString(2), Convert.ToInt64(reader.GetValue(3), CultureInfo.InvariantCulture),
                    Convert.ToInt64(reader.GetValue(4), CultureInfo.InvariantCulture), Convert.ToInt64(reader.GetValue(5), CultureInfo.InvariantCulture)));
            }

            return (IReadOnlyList<UsageRow>)rows;
        });
    }

    public IReadOnlyList<ConsumptionRow> Consumption(DateTimeOffset since, string? onlyNode, string? exceptNode, DateTimeOffset? before = null)
    {
        // The chains by name ("node IN (...)"), never "node <> x", which no index bounds: the other nodes' usage is read
        // every few seconds, and a scan of the whole audit history outlasted the command timeout once the log grew.
        IReadOnlyList<string> nodes = onlyNode is not null ? [onlyNode] : [.. Nodes().Where(n => n != exceptNode)];
        return nodes.Count == 0 ? [] : WithReadConnection(connection => ReadConsumption(connection, nodes, since, before));
    }

    private static IReadOnlyList<ConsumptionRow> ReadConsumption(DbConnection connection, IReadOnlyList<string> nodes, DateTimeOffset since, DateTimeOffset? before)
    {
        using var command = Command(connection,
            "SELECT COALESCE(username, subject), team, SUM(CASE WHEN kind = @accepted THEN 1 ELSE 0 END), "
            + "COALESCE(SUM(CASE WHEN kind = @completed THEN COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0) ELSE 0 END), 0) "
            + $"FROM audit_entries WHERE node IN ({string.Join(", ", nodes.Select((_, i) => $"@node{i}"))}) AND kind IN (@accepted, @completed) "
            + $"AND model IS NOT NULL AND time >= @since{(before is null ? string.Empty : " AND time < @before")} "
            + "GROUP BY COALESCE(username, subject), team",
            [.. nodes.Select((chain, i) => ($"node{i}", (object?)chain)), ("accepted", AuditKinds.Accepted), ("completed", AuditKinds.Completed),
                ("since", CanonicalJson.Time(since)), .. before is { } end ? [("before", (object?)CanonicalJson.Time(end))] : Array.Empty<(string, object?)>()]);
        using var reader = command.ExecuteReader();
        var rows = new List<ConsumptionRow>();
        while (reader.Read())
        {
            rows.Add(new ConsumptionRow(Text(reader, 0), Text(reader, 1), Convert.ToInt64(reader.GetValue(2), CultureInfo.InvariantCulture),
                Convert.ToInt64(reader.GetValue(3), CultureInfo.InvariantCulture)));
        }

        return rows;
    }

    /// <inheritdoc cref="IAuditStore.TryClaimIdleChain"/>
    public virtual IDisposable? TryClaimIdleChain(string node) => null;

    public IReadOnlyList<string> Nodes() => WithReadConnection(connection =>
    {
        // A chain that retention emptied still has its signed record, and one whose entries were deleted its checkpoints.
        // Distinct nodes by skipping along each table's primary key (node, seq), one probe per node, not a scan of every row.
        using var command = Command(connection,
            $"WITH RECURSIVE {SkipScan("entry_nodes", "audit_entries")}, {SkipScan("checkpoint_nodes", "audit_checkpoints")} "
            + "SELECT node FROM entry_nodes WHERE node IS NOT NULL UNION SELECT node FROM checkpoint_nodes WHERE node IS NOT NULL "
            + "UNION SELECT node FROM audit_retention ORDER BY 1");
        using var reader = command.ExecuteReader();
        var nodes = new List<string>();
        while (reader.Read())
        {
            nodes.Add(reader.GetString(0));
        }

        return (IReadOnlyList<string>)nodes;
    });

    private static string SkipScan(string name, string table) =>
        $"{name}(node) AS (SELECT (SELECT node FROM {table} ORDER BY node LIMIT 1) "
        + $"UNION ALL SELECT (SELECT t.node FROM {table} t WHERE t.node > {name}.node ORDER BY t.node LIMIT 1) FROM {name} WHERE {name}.node IS NOT NULL)";

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    internal static DateTimeOffset ParseTime(string text) =>
        DateTimeOffset.ParseExact(text, "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    protected abstract void Dispose(bool disposing);

    protected static void Execute(DbConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    protected static DbCommand Command(DbConnection connection, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }

        return command;
    }

    private void WithConnection(Func<DbConnection, bool> work) => WithConnection<bool>(work);

    private static void Bind(DbCommand insert, AuditEntry entry)
    {
        var r = entry.Record;
        object?[] values =
        [
            entry.Sequence, entry.Node, CanonicalJson.Time(r.Time), r.Kind, r.RequestId, r.Subject, r.Username, r.Client, r.Team,
            JsonSerializer.Serialize(r.Roles), r.SourceIp, r.Method, r.Endpoint, r.Model, r.ModelDigest, r.Classification, r.Status,
            r.ErrorCode, r.FinishReason, r.PromptTokens, r.CompletionTokens, r.QueueMs, r.TimeToFirstTokenMs, r.DurationMs, r.Detail,
            r.Content, entry.PreviousHash, entry.Hash,
        ];
        for (var i = 0; i < values.Length; i++)
        {
            insert.Parameters[i].Value = values[i] ?? DBNull.Value;
        }
    }

    private static IEnumerable<AuditEntry> ReadAll(DbCommand command)
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
                Content = Text(reader, 25),
            };
            yield return new AuditEntry(reader.GetInt64(0), reader.GetString(1), record, reader.GetString(26), reader.GetString(27));
        }
    }

    private static string? Text(DbDataReader reader, int column) => reader.IsDBNull(column) ? null : reader.GetString(column);

    private static void Filter(List<string> filters, List<(string, object?)> parameters, string clause, string name, string? value)
    {
        if (value is not null)
        {
            filters.Add(clause);
            parameters.Add((name, value));
        }
    }
}
