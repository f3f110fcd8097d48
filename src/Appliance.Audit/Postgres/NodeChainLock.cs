using Microsoft.Extensions.Logging;
using Npgsql;

namespace Appliance.Audit.Postgres;

/// <summary>
/// The session advisory lock that makes one process the only writer of a node's chain, held on a connection of its
/// own (not pooled, with TCP keepalives, named after this process in pg_stat_activity). A session lock lives as long
/// as its session: a database restart or failover ends both, so the lock is checked every <c>interval</c> (and before
/// a write when it is not known to be held) and taken again. A session of this process that the server still keeps
/// (a network cut the server has not noticed) is ended first. If another process holds the lock (a second process
/// given the same node id), this one stops writing for good: two writers would collide on the chain's entries.
/// </summary>
public sealed partial class NodeChainLock : IDisposable
{
    private const string HolderQuery = """
        SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext('appliance-audit-node:' || @node)::bigint
        """;

    /// <summary>
    /// How a retention claim on an idle chain names its session (<see cref="TryClaimIdle"/>): a writer that finds its
    /// lock held by one waits for it to end, rather than taking it for another process writing its chain.
    /// </summary>
    internal const string RetentionClaimName = "appliance retention claim";

    /// <summary>The longest a starting writer waits for a retention claim on its chain (a step takes seconds).</summary>
    private const int RetentionClaimWaitMs = 120_000;

    /// <summary>Milliseconds a write trusts the lock's session to be alive since it last answered.</summary>
    private const long FreshFor = 1000;

    private readonly string _connectionString;
    private readonly string _applicationName;
    private readonly string _node;
    private readonly TimeSpan _interval;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Timer _timer;
    private NpgsqlConnection? _connection;
    private bool _disposed;
    private long _verifiedAt = Environment.TickCount64; // when the lock's session last answered
    private long _failedAt = long.MinValue / 2; // when taking it again last failed to reach the database

    public NodeChainLock(string connectionString, string node, TimeSpan interval, ILogger logger)
    {
        (_node, _interval, _logger) = (node, interval, logger);
        _applicationName = $"appliance audit lock {Guid.NewGuid():N}"; // under PostgreSQL's 63 bytes, unique to this process
        _connectionString = new NpgsqlConnectionStringBuilder(connectionString)
        {
            Pooling = false,
            KeepAlive = 30,
            ApplicationName = _applicationName,
            Timeout = 10,
            CommandTimeout = 10,
            // The server notices a vanished client within a minute too, so a session cut off from this process
            // does not hold the lock for the two hours of the default keepalive.
            Options = "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3",
        }.ToString();
        var connection = Open();
        // A previous process of this node (restarted, or killed) may hold the lock for a moment while the server ends
        // its session: wait for that before calling the node id taken.
        for (var waited = 0; !TryTake(connection); waited += 250)
        {
            if (waited >= 10_000 && !(waited < RetentionClaimWaitMs && HeldForRetention(Holder(connection))))
            {
                connection.Dispose();
                throw new InvalidOperationException($"another appliance process already writes the audit chain of node '{node}'; give each node its own Audit:NodeId");
            }

            Thread.Sleep(250);
        }

        _connection = connection;
        _timer = new Timer(_ => Tick(), null, interval, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Why this process must not write to the chain (another process holds its lock), or null.</summary>
    public string? Refusal { get; private set; }

    /// <summary>
    /// Before a write: the lock must be held. Its session is asked again when it last answered more than a second ago
    /// (so a write goes in without the lock for at most that long after a restart, at the cost of one round trip a
    /// second under load); when it is gone, the lock is taken again now, and the write goes on only once it is.
    /// </summary>
    public void EnsureHeld()
    {
        if (Refusal is null && (Volatile.Read(ref _connection) is null || Environment.TickCount64 - Interlocked.Read(ref _verifiedAt) > FreshFor))
        {
            Check();
        }

        if (Refusal is { } refusal)
        {
            throw new InvalidOperationException(refusal);
        }

        if (Volatile.Read(ref _connection) is null)
        {
            throw new InvalidOperationException($"the audit chain lock of node '{_node}' could not be taken again yet (the database ended its session)");
        }
    }

    /// <summary>Asks the lock's session whether it is alive; if it is gone, takes the lock again on a new one.</summary>
    public void Check()
    {
        lock (_gate)
        {
            if (_disposed || Refusal is not null)
            {
                return;
            }

            try
            {
                if (_connection is not null)
                {
                    using var ping = new NpgsqlCommand("SELECT 1", _connection);
                    ping.ExecuteScalar();
                    Interlocked.Exchange(ref _verifiedAt, Environment.TickCount64);
                    return;
                }
            }
            catch (Exception exception) when (exception is NpgsqlException or InvalidOperationException or TimeoutException)
            {
                // The session ended (restart, failover, a network cut), and the lock with it (or it soon will).
            }

            _connection?.Dispose();
            Volatile.Write(ref _connection, null);
            if (Environment.TickCount64 - _failedAt < FreshFor)
            {
                return; // tried a moment ago: callers queued behind that try do not each wait for the database again
            }

            try
            {
                Retake();
            }
            catch (Exception exception) when (exception is NpgsqlException or InvalidOperationException or TimeoutException or InvalidCastException)
            {
                // The database is not back yet: the next check, or the next write, tries again.
                _failedAt = Environment.TickCount64;
            }
        }
    }

    private void Retake()
    {
        var connection = Open();
        try
        {
            if (!TryTake(connection))
            {
                var holder = Holder(connection);
                if (holder is { } stale && stale.Name == _applicationName && End(connection, stale.Pid) && TryTake(connection))
                {
                    // this process's own earlier session, which the server had kept: ended, and the lock taken
                }
                else
                {
                    connection.Dispose();
                    if (holder is { } other && other.Name != _applicationName && !HeldForRetention(holder))
                    {
                        Refusal = $"another appliance process took the audit chain of node '{_node}' while this one was cut off from the database; give each node its own Audit:NodeId and restart this one";
                        LogTakenByAnother(_logger, _node);
                    }
                    else
                    {
                        _failedAt = Environment.TickCount64; // its old session still ending: again at the next check
                    }

                    return;
                }
            }
        }
        catch
        {
            connection.Dispose();
            throw;
        }

        Volatile.Write(ref _connection, connection);
        Interlocked.Exchange(ref _verifiedAt, Environment.TickCount64);
        LogRetaken(_logger, _node);
    }

    /// <summary>
    /// The lock of a chain no process writes (a node retired), for one retention step: on a session of its own, named as
    /// such and not pooled, so that closing it ends the session and the lock with it whatever happens. Null when a
    /// process holds it.
    /// </summary>
    public static IDisposable? TryClaimIdle(string connectionString, string node)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString)
        {
            Pooling = false,
            ApplicationName = $"{RetentionClaimName} {Guid.NewGuid():N}",
            Timeout = 10,
            CommandTimeout = 10,
        }.ToString());
        try
        {
            connection.Open();
            using var command = new NpgsqlCommand("SELECT pg_try_advisory_lock(hashtext('appliance-audit-node:' || @node))", connection);
            command.Parameters.AddWithValue("node", node);
            if (command.ExecuteScalar() is true)
            {
                return connection;
            }
        }
        catch
        {
            connection.Dispose();
            throw;
        }

        connection.Dispose();
        return null;
    }

    private static bool HeldForRetention((int Pid, string? Name)? holder) =>
        holder is { Name: { } name } && name.StartsWith(RetentionClaimName, StringComparison.Ordinal);

    /// <summary>The session that holds the lock (its process id and application name), or null when none does now.</summary>
    private (int Pid, string? Name)? Holder(NpgsqlConnection connection)
    {
        using var holder = new NpgsqlCommand(HolderQuery, connection);
        holder.Parameters.AddWithValue("node", _node);
        using var reader = holder.ExecuteReader();
        return reader.Read() ? (reader.GetInt32(0), reader.IsDBNull(1) ? null : reader.GetString(1)) : null;
    }

    private static bool End(NpgsqlConnection connection, int pid)
    {
        using var end = new NpgsqlCommand("SELECT pg_terminate_backend(@pid, 5000)", connection);
        end.Parameters.AddWithValue("pid", pid);
        return end.ExecuteScalar() is true;
    }

    private void Tick()
    {
        try
        {
            Check();
        }
        catch (Exception exception)
        {
            LogCheckFailed(_logger, exception, _node); // never out of a timer thread: that would end the process
        }
        finally
        {
            lock (_gate)
            {
                if (!_disposed)
                {
                    _timer.Change(_interval, Timeout.InfiniteTimeSpan); // one check at a time: the next once this one is done
                }
            }
        }
    }

    private NpgsqlConnection Open()
    {
        var connection = new NpgsqlConnection(_connectionString);
        try
        {
            connection.Open();
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private bool TryTake(NpgsqlConnection connection)
    {
        using var command = new NpgsqlCommand("SELECT pg_try_advisory_lock(hashtext('appliance-audit-node:' || @node))", connection);
        command.Parameters.AddWithValue("node", _node);
        return command.ExecuteScalar() is true;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _timer.Dispose();
            _connection?.Dispose();
        }
    }

    [LoggerMessage(EventId = 4012, Level = LogLevel.Error, Message = "Checking the audit chain lock of node '{Node}' failed")]
    private static partial void LogCheckFailed(ILogger logger, Exception exception, string node);

    [LoggerMessage(EventId = 4010, Level = LogLevel.Warning, Message = "The database had ended this node's session; the audit chain of node '{Node}' is locked for this process again")]
    private static partial void LogRetaken(ILogger logger, string node);

    [LoggerMessage(EventId = 4011, Level = LogLevel.Critical, Message = "Another appliance process took the audit chain of node '{Node}' while this one was cut off from the database; this process writes no more audit records (and so serves no requests, and reports not ready): give each node its own Audit:NodeId and restart it")]
    private static partial void LogTakenByAnother(ILogger logger, string node);
}
