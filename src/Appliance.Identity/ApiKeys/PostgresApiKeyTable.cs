using System.Data.Common;
using Appliance.Audit.Postgres;
using Npgsql;

namespace Appliance.Identity.ApiKeys;

/// <summary>The API keys of a cluster: one table in the PostgreSQL database the nodes share for the audit log.</summary>
public sealed class PostgresApiKeyTable : ApiKeyTable
{
    private readonly NpgsqlDataSource _dataSource;

    public PostgresApiKeyTable(string connectionString)
    {
        _dataSource = NpgsqlDataSource.Create(Appliance.Audit.Postgres.ConnectionDefaults.Apply(connectionString));
        using var connection = _dataSource.OpenConnection();
        // Nodes may start together: one creates the table, the others wait for it.
        Execute(connection, "SELECT pg_advisory_lock(hashtext('appliance-api-keys-schema'));");
        try
        {
            Execute(connection, Schema);
            // A table of an earlier version gains the column; checked first, as ALTER TABLE needs the table's owner and
            // an exclusive lock even when there is nothing to add.
            using var has = Command(connection,
                "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'api_keys' AND column_name = @column",
                ("column", OwnerIdColumn));
            if (Convert.ToInt64(has.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 0)
            {
                Execute(connection, $"ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS {OwnerIdColumn} TEXT");
            }
        }
        finally
        {
            Execute(connection, "SELECT pg_advisory_unlock(hashtext('appliance-api-keys-schema'));");
        }
    }

    public override string Name => "postgresql";

    protected override T WithConnection<T>(Func<DbConnection, T> work) => PooledConnections.Run(_dataSource, work);

    protected override void Dispose(bool disposing) => _dataSource.Dispose();
}
