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

    public SqliteAuditStore(string path, long? maxSizeBytes = null)
        : this(path, readOnly: false)
    {
        Execute(_connection, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
        Execute(_connection, Schema("INTEGER", "REAL"));
        foreach (var (_, definition) in BackgroundIndexes)
        {
            Execute(_connection, $"CREATE INDEX IF NOT EXISTS {definition}");
        }
        if (maxSizeBytes is { } limit)
        {
            // A size cap (a disk quota in effect): when reached, appends fail and the appliance refuses new requests.
            using var pageSize = _connection.CreateCommand();
            pageSize.CommandText = "PRAGMA page_size;";
            var bytes = Convert.ToInt64(pageSize.ExecuteScalar(), CultureInfo.InvariantCulture);
            Execute(_connection, $"PRAGMA max_page_count={Math.Max(1, limit / bytes)};");
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
