using Microsoft.Extensions.Logging;
using Npgsql;

namespace Appliance.Audit.Postgres;

/// <summary>
/// The session advisory lock that makes one process the only writer of a node's chain. A session lock lives as long as
/// its connection: a database restart or failover ends both, so the lock is checked every <c>interval</c> and taken again
/// on a new connection. If another process took it meanwhile (a second process given the same node id), this one stops
/// writing for good: two writers would fork the chain.
/// </summary>
public sealed partial class NodeChainLock : IDisposable
{
    private readonly NpgsqlDataSource _source;
    private readonly string _node;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Timer _timer;
    private NpgsqlConnection? _connection;
    private bool _disposed;

    public NodeChainLock(NpgsqlDataSource source, string node, TimeSpan interval, ILogger logger)
    {
        (_source, _node, _logger) = (source, node, logger);
        _connection = source.OpenConnection();
        if (!TryTake(_connection))
        {
            _connection.Dispose();
            throw new InvalidOperationException($"another appliance process already writes the audit chain of node '{node}'; give each node its own Audit:NodeId");
        }

        _timer = new Timer(_ => Check(), null, interval, interval);
    }

    /// <summary>Whether another process holds the chain's lock: this one must not write to the chain again.</summary>
    public bool TakenByAnother { get; private set; }

    /// <summary>Asks the lock's connection whether it is alive; if the server ended it, takes the lock again on a new one.</summary>
    public void Check()
    {
        lock (_gate)
        {
            if (_disposed || TakenByAnother)
            {
                return;
            }

            try
            {
                if (_connection is not null)
                {
                    using var ping = new NpgsqlCommand("SELECT 1", _connection);
                    ping.ExecuteScalar();
                    return;
                }
            }
            catch (Exception exception) when (exception is NpgsqlException or InvalidOperationException)
            {
                // The session ended (restart, failover, a network cut), and the lock with it.
            }

            _connection?.Dispose();
            _connection = null;
            try
            {
                var connection = _source.OpenConnection();
                if (TryTake(connection))
                {
                    _connection = connection;
                    LogRetaken(_logger, _node);
                    return;
                }

                connection.Dispose();
                TakenByAnother = true;
                LogTakenByAnother(_logger, _node);
            }
            catch (Exception exception) when (exception is NpgsqlException or InvalidOperationException)
            {
                // The database is not back yet: the next check tries again (writes fail on their own meanwhile).
            }
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

    [LoggerMessage(EventId = 4010, Level = LogLevel.Warning, Message = "The database had ended this node's session; the audit chain of node '{Node}' is locked for this process again")]
    private static partial void LogRetaken(ILogger logger, string node);

    [LoggerMessage(EventId = 4011, Level = LogLevel.Critical, Message = "Another appliance process took the audit chain of node '{Node}' while this one was cut off from the database; this process writes no more audit records (and so serves no requests): give each node its own Audit:NodeId and restart it")]
    private static partial void LogTakenByAnother(ILogger logger, string node);
}
