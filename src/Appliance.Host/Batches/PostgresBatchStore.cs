using System.Data.Common;
using Npgsql;

namespace Appliance.Host.Batches;

/// <summary>A cluster's batches and files: tables in the PostgreSQL database its nodes share for the audit log.</summary>
internal sealed class PostgresBatchStore : SqlBatchStore
{
    private readonly NpgsqlDataSource _dataSource;

    public PostgresBatchStore(string connectionString)
    {
        _dataSource = NpgsqlDataSource.Create(Appliance.Audit.Postgres.ConnectionDefaults.Apply(connectionString));
        using var connection = _dataSource.OpenConnection();
        // Nodes may start together: one creates the tables, the others wait for it.
        using (var locked = Command(connection, "SELECT pg_advisory_lock(hashtext('appliance-batches-schema'));"))
        {
            locked.ExecuteNonQuery();
        }

        try
        {
            using var schema = Command(connection, Schema);
            schema.ExecuteNonQuery();
        }
        finally
        {
            using var unlock = Command(connection, "SELECT pg_advisory_unlock(hashtext('appliance-batches-schema'));");
            unlock.ExecuteNonQuery();
        }
    }

    protected override string BinaryType => "BYTEA";

    protected override async Task<DbConnection> OpenAsync(CancellationToken cancellation) => await _dataSource.OpenConnectionAsync(cancellation);

    public override void Dispose() => _dataSource.Dispose();
}
