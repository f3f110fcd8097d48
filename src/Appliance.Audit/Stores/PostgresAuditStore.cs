using System.Data.Common;
using Appliance.Audit.Postgres;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Appliance.Audit.Stores;

/// <summary>
/// PostgreSQL for installations of several nodes: one database, one chain per node (each node's single writer owns
/// its chain, so nodes never wait for each other). A session advisory lock per node id, held while the node runs
/// (<see cref="NodeChainLock"/>), refuses a second process that was given the same node id.
/// </summary>
public sealed partial class PostgresAuditStore : SqlAuditStore
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly ILogger _logger;
    private readonly string _connectionString;
    private readonly NodeChainLock? _nodeLock;

    /// <param name="lockNode">The node whose chain this process writes: its lock is held (and taken again after a database restart).</param>
    /// <param name="lockCheck">How often the lock's connection is checked (default 15 s).</param>
    /// <param name="writeTimeout">
    /// The longest one statement of an append may wait (default 10 s): a database that stops answering, or a lock held
    /// on the audit table, fails the batch then (its requests refused, the node reported not ready) instead of holding
    /// it, and every request queued behind it, for the 30 s of Npgsql's default.
    /// </param>
    public PostgresAuditStore(string connectionString, string? lockNode = null, TimeSpan? lockCheck = null, ILogger? logger = null, TimeSpan? writeTimeout = null)
    {
        connectionString = ConnectionDefaults.Apply(connectionString);
        _connectionString = connectionString;
        _logger = logger ?? NullLogger.Instance;
        WriteTimeoutSeconds = (int)Math.Ceiling((writeTimeout ?? TimeSpan.FromSeconds(10)).TotalSeconds);
        _dataSource = NpgsqlDataSource.Create(connectionString);
        try
        {
            EnsureSchema();
        }
        catch
        {
            _dataSource.Dispose();
            throw;
        }

        if (lockNode is not null)
        {
            try
            {
                _nodeLock = new NodeChainLock(connectionString, lockNode, lockCheck ?? TimeSpan.FromSeconds(15), logger ?? NullLogger.Instance);
            }
            catch
            {
                _dataSource.Dispose();
                throw;
            }

            _ = Task.Run(BuildBackgroundIndexes);
        }
    }

    /// <summary>
    /// Creates the schema unless it is all there. The check reads the catalogue only, so a node that starts while
    /// another builds the witness index concurrently takes no lock on the audit table: `CREATE INDEX IF NOT EXISTS`
    /// would, and the concurrent build waits for every older transaction, that one included (a deadlock the server
    /// ends by failing one of them). When the schema is missing or incomplete (a first start, an upgrade), nodes that
    /// start together create it one at a time, and a statement the server chose as a deadlock's victim runs again.
    /// </summary>
    private void EnsureSchema()
    {
        using var connection = _dataSource.OpenConnection();
        if (SchemaComplete(connection))
        {
            return;
        }

        Execute(connection, "SELECT pg_advisory_lock(hashtext('appliance-audit-schema'));");
        try
        {
            if (SchemaComplete(connection))
            {
                return; // another node created it while this one waited for the lock
            }

            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    Execute(connection, Schema("BIGINT", "DOUBLE PRECISION"));
                    return;
                }
                catch (PostgresException exception) when (exception.SqlState == PostgresErrorCodes.DeadlockDetected && attempt < 5)
                {
                    Thread.Sleep(100 * attempt); // the statement rolled back whole; the other side finishes first
                }
            }
        }
        finally
        {
            Execute(connection, "SELECT pg_advisory_unlock(hashtext('appliance-audit-schema'));");
        }
    }

    private static bool SchemaComplete(DbConnection connection)
    {
        using var command = Command(connection,
            "SELECT count(*) FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND relname = ANY(@names)",
            ("names", SchemaObjects));
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == SchemaObjects.Length;
    }

    /// <summary>
    /// Builds the indexes made apart from the schema (<see cref="SqlAuditStore.BackgroundIndexes"/>: witness entries, a
    /// caller's usage), concurrently and in the background: on a long audit table a build takes a while, and neither
    /// this node's start nor the other nodes' writes wait for it (without them lookups are slower, never wrong). One
    /// node at a time; an index a stopped build left invalid is built again.
    /// </summary>
    private void BuildBackgroundIndexes()
    {
        try
        {
            using var connection = _dataSource.OpenConnection();
            // The lock keeps the name it had when it guarded the witness index alone: nodes of both versions take turns.
            using (var claim = Command(connection, "SELECT pg_try_advisory_lock(hashtext('appliance-audit-witness-index'))"))
            {
                if (claim.ExecuteScalar() is not true)
                {
                    return; // another node is building them (the lock goes with that node's connection)
                }
            }

            // A role's statement_timeout would cancel a long build (and leave the index invalid at every start).
            Unbounded(connection, "SET statement_timeout = 0");
            foreach (var (name, definition) in BackgroundIndexes)
            {
                for (var attempt = 1; ; attempt++)
                {
                    try
                    {
                        DropIfInvalid(connection, name);
                        Unbounded(connection, $"CREATE INDEX CONCURRENTLY IF NOT EXISTS {definition}");
                        break;
                    }
                    catch (PostgresException exception) when (exception.SqlState == PostgresErrorCodes.DeadlockDetected && attempt < 3)
                    {
                        Thread.Sleep(500 * attempt); // chosen as a deadlock's victim: the index it left invalid is built again
                    }
                }
            }
        }
        catch (Exception exception) when (exception is NpgsqlException or ObjectDisposedException or InvalidOperationException)
        {
            // The store was closed, or the database refused: lookups go on without the index; the next start tries again.
            LogIndexNotBuilt(_logger, exception);
        }
    }

    [LoggerMessage(EventId = 4062, Level = LogLevel.Warning, Message = "An index of the audit table could not be built in the background (lookups go on without it, more slowly; the next start tries again)")]
    private static partial void LogIndexNotBuilt(ILogger logger, Exception exception);

    private static void DropIfInvalid(DbConnection connection, string index)
    {
        using var invalid = Command(connection,
            "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = @name AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
            ("name", index));
        if (invalid.ExecuteScalar() is true)
        {
            Unbounded(connection, $"DROP INDEX CONCURRENTLY IF EXISTS {index}");
        }
    }

    private static void Unbounded(DbConnection connection, string sql)
    {
        using var command = Command(connection, sql);
        command.CommandTimeout = 0; // a build over a long table outlasts the default 30 s
        command.ExecuteNonQuery();
    }

    public override string Name => "postgresql";

    /// <summary>Why this process may not write its chain any more (another process holds its lock), or null.</summary>
    public string? WritesRefused => _nodeLock?.Refusal;

    // A connection the server ended means a restart or failover ended the chain lock's session too: it is taken
    // again before the work is retried, so no write goes in without it.
    protected override T WithConnection<T>(Func<DbConnection, T> work) => PooledConnections.Run(_dataSource, work, _nodeLock is null ? null : _nodeLock.Check);

    protected override void BeforeWrite() => _nodeLock?.EnsureHeld();

    /// <summary>The chain's writer lock (as <see cref="NodeChainLock"/> takes it), when no process holds it.</summary>
    public override IDisposable? TryClaimIdleChain(string node) => NodeChainLock.TryClaimIdle(_connectionString, node);

    protected override void Dispose(bool disposing)
    {
        _nodeLock?.Dispose();
        _dataSource.Dispose();
    }
}
