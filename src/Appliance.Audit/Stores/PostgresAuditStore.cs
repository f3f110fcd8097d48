using System.Data.Common;
using Npgsql;

namespace Appliance.Audit.Stores;

/// <summary>
/// PostgreSQL for installations of several nodes: one database, one chain per node (each node's single writer owns
/// its chain, so nodes never wait for each other). A session advisory lock per node id, held while the node runs,
/// refuses a second process that was given the same node id.
/// </summary>
public sealed class PostgresAuditStore : SqlAuditStore
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly NpgsqlConnection? _nodeLock;

    public PostgresAuditStore(string connectionString, string? lockNode = null)
    {
        _dataSource = NpgsqlDataSource.Create(connectionString);
        using (var connection = _dataSource.OpenConnection())
        {
            // Nodes may start together: one creates the schema, the others wait for it.
            Execute(connection, "SELECT pg_advisory_lock(hashtext('appliance-audit-schema'));");
            try
            {
                Execute(connection, Schema("BIGINT", "DOUBLE PRECISION"));
            }
            finally
            {
                Execute(connection, "SELECT pg_advisory_unlock(hashtext('appliance-audit-schema'));");
            }

            try
            {
                // Concurrently, its own statement outside the schema lock: on a long audit table the other nodes keep
                // writing (and starting) meanwhile. Without it witness lookups are slower, never wrong.
                Execute(connection, $"CREATE INDEX CONCURRENTLY IF NOT EXISTS {WitnessIndex}");
            }
            catch (PostgresException)
            {
                // Another node built it at the same moment.
            }
        }

        if (lockNode is not null)
        {
            _nodeLock = _dataSource.OpenConnection();
            using var command = Command(_nodeLock, "SELECT pg_try_advisory_lock(hashtext('appliance-audit-node:' || @node))", ("node", lockNode));
            if (command.ExecuteScalar() is not true)
            {
                _nodeLock.Dispose();
                _dataSource.Dispose();
                throw new InvalidOperationException($"another appliance process already writes the audit chain of node '{lockNode}'; give each node its own Audit:NodeId");
            }
        }
    }

    public override string Name => "postgresql";

    protected override T WithConnection<T>(Func<DbConnection, T> work)
    {
        using var connection = _dataSource.OpenConnection();
        return work(connection);
    }

    protected override void Dispose(bool disposing)
    {
        _nodeLock?.Dispose();
        _dataSource.Dispose();
    }
}
