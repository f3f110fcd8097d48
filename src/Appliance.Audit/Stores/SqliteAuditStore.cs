using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;

namespace Appliance.Audit.Stores;

/// <summary>
/// The embedded default: one SQLite file in write-ahead-log mode with synchronous=FULL, so that an entry whose append
/// returned survives a crash of the process or of the machine. Group commit (in <see cref="AuditLog"/>) pays one
/// fsync per batch, not per request.
/// </summary>
public sealed class SqliteAuditStore : SqlAuditStore
{
    private readonly SqliteConnection _connection;
    /// <summary>Read connections kept open between reads; more are opened while more reads run at once.</summary>
    private const int MaxIdleReaders = 4;

    private readonly Lock _gate = new();
    private readonly string _path;
    private readonly bool _readOnly;
    private readonly Lock _readGate = new();
    private readonly Stack<SqliteConnection> _idleReaders = new();
    private bool _disposed;

    /// <summary>Entries above which an index missing from an existing file is not built at open (see <see cref="SkippedIndex"/>).</summary>
    public const long IndexAtOpenRowLimit = 1_000_000;

    public SqliteAuditStore(string path, long? maxSizeBytes = null)
        : this(path, readOnly: false)
    {
        Execute(_connection, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
        Execute(_connection, Schema("INTEGER", "REAL"));
        Execute(_connection, $"CREATE INDEX IF NOT EXISTS {WitnessIndex}");
        if (maxSizeBytes is { } limit)
        {
            // A size cap (a disk quota in effect): when reached, appends fail and the appliance refuses new requests.
            using var pageSize = _connection.CreateCommand();
            pageSize.CommandText = "PRAGMA page_size;";
            var bytes = Convert.ToInt64(pageSize.ExecuteScalar(), CultureInfo.InvariantCulture);
            Execute(_connection, $"PRAGMA max_page_count={Math.Max(1, limit / bytes)};");
        }

        SkippedIndex = BuildUserTimeIndex();
    }

    /// <summary>
    /// Why the (node, username, time) index is missing, with the command that builds it; null when it is there. The
    /// host says it at start.
    /// </summary>
    public string? SkippedIndex { get; }

    /// <summary>
    /// The index of a caller's usage over a period, which an upgrade adds to an existing file. Built at open only while
    /// the file is small (about a second): a long build would hold the start past systemd's start timeout, which kills
    /// and restarts the node, again and again. Within the size cap only: a file at its cap keeps taking entries.
    /// </summary>
    private string? BuildUserTimeIndex()
    {
        using (var exists = _connection.CreateCommand())
        {
            exists.CommandText = $"SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '{UserTimeIndexName}'";
            if (Convert.ToInt64(exists.ExecuteScalar(), CultureInfo.InvariantCulture) > 0)
            {
                return null;
            }
        }

        var manual = $"build it while the node is stopped: sqlite3 {_path} \"CREATE INDEX IF NOT EXISTS {UserTimeIndex}\"";
        using (var rows = _connection.CreateCommand())
        {
            rows.CommandText = "SELECT COALESCE(MAX(rowid), 0) FROM audit_entries"; // an upper bound of the entries, read from the table's end
            if (Convert.ToInt64(rows.ExecuteScalar(), CultureInfo.InvariantCulture) > IndexAtOpenRowLimit)
            {
                return $"The audit file holds more than {IndexAtOpenRowLimit:N0} entries, too many to index at start; a caller's own usage (the console's welcome page) reads more slowly until {manual}";
            }
        }

        try
        {
            Execute(_connection, $"CREATE INDEX {UserTimeIndex}");
            return null;
        }
        catch (SqliteException exception) when (exception.SqliteErrorCode == 13) // SQLITE_FULL: Audit:MaxSizeBytes
        {
            return $"The audit file is too close to Audit:MaxSizeBytes for the index of a caller's usage; raise the cap, then {manual}";
        }
    }

    private SqliteAuditStore(string path, bool readOnly)
    {
        if (!readOnly)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        }

        (_path, _readOnly) = (path, readOnly);
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path, Pooling = false, Mode = readOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWriteCreate,
        }.ToString());
        _connection.Open();
    }

    public override string Name => "sqlite";

    /// <summary>A store opened for reading only, as the offline verifier does: it changes nothing in the file.</summary>
    public static SqliteAuditStore OpenReadOnly(string path) => new(path, readOnly: true);

    protected override T WithConnection<T>(Func<DbConnection, T> work)
    {
        lock (_gate)
        {
            return work(_connection);
        }
    }

    /// <summary>
    /// Reads (searches, verification, exports, usage) run on read-only connections of their own: in write-ahead-log
    /// mode a reader sees every committed append and never blocks the writer. Each read takes its own connection, so
    /// a long scan (a usage report over a year) holds up neither requests nor the writer's own look at the checkpoints.
    /// </summary>
    protected override T WithReadConnection<T>(Func<DbConnection, T> work)
    {
        if (_readOnly)
        {
            return WithConnection(work);
        }

        SqliteConnection? reader;
        lock (_readGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _idleReaders.TryPop(out reader);
        }

        if (reader is null)
        {
            reader = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _path, Pooling = false, Mode = SqliteOpenMode.ReadOnly }.ToString());
            reader.Open();
        }

        try
        {
            return work(reader);
        }
        finally
        {
            lock (_readGate)
            {
                if (_disposed || _idleReaders.Count >= MaxIdleReaders)
                {
                    reader.Dispose();
                }
                else
                {
                    _idleReaders.Push(reader);
                }
            }
        }
    }

    /// <summary>One process writes the file: another chain in it (a node id changed) has no writer of its own.</summary>
    public override IDisposable? TryClaimIdleChain(string node) => _readOnly ? null : new IdleChain();

    protected override void Dispose(bool disposing)
    {
        lock (_readGate)
        {
            _disposed = true;
            while (_idleReaders.TryPop(out var reader))
            {
                reader.Dispose();
            }
        }

        lock (_gate)
        {
            _connection.Dispose();
        }
    }

    private sealed class IdleChain : IDisposable
    {
        public void Dispose()
        {
        }
    }
}
