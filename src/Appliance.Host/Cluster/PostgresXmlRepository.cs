using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Appliance.Audit.Postgres;
using Npgsql;

namespace Appliance.Host.Cluster;

/// <summary>
/// The Data Protection key ring in the cluster's PostgreSQL, so that a console cookie, an antiforgery token or an
/// OpenID Connect correlation cookie made by one node is read by every other. Elements are only ever added (keys and
/// revocations), as the key manager expects of a repository.
/// </summary>
internal sealed class PostgresXmlRepository : IXmlRepository, IDisposable
{
    /// <summary>Held while a node makes sure the ring has a key, so that nodes starting together do not each make one.</summary>
    public const string CreationLock = "SELECT pg_advisory_lock(hashtext('appliance-data-protection-key'))";

    public const string CreationUnlock = "SELECT pg_advisory_unlock(hashtext('appliance-data-protection-key'))";

    private readonly NpgsqlDataSource _dataSource;

    public PostgresXmlRepository(string connectionString)
    {
        _dataSource = NpgsqlDataSource.Create(Appliance.Audit.Postgres.ConnectionDefaults.Apply(connectionString));
        using var connection = _dataSource.OpenConnection();
        Execute(connection, "SELECT pg_advisory_lock(hashtext('appliance-data-protection-schema'))");
        try
        {
            Execute(connection, "CREATE TABLE IF NOT EXISTS data_protection_keys (friendly_name TEXT PRIMARY KEY, xml TEXT NOT NULL, created TIMESTAMPTZ NOT NULL DEFAULT now())");
        }
        finally
        {
            Execute(connection, "SELECT pg_advisory_unlock(hashtext('appliance-data-protection-schema'))");
        }
    }

    public NpgsqlDataSource DataSource => _dataSource;

    public IReadOnlyCollection<XElement> GetAllElements() => PooledConnections.Run(_dataSource, connection =>
    {
        using var command = new NpgsqlCommand("SELECT xml FROM data_protection_keys ORDER BY created, friendly_name", connection);
        using var reader = command.ExecuteReader();
        var elements = new List<XElement>();
        while (reader.Read())
        {
            elements.Add(XElement.Parse(reader.GetString(0)));
        }

        return elements;
    });

    public void StoreElement(XElement element, string friendlyName) => PooledConnections.Run(_dataSource, connection =>
    {
        // Friendly names are unique per key ("key-<guid>"); a name seen before gets a suffix rather than replacing
        // anything, unless it holds this very key already (a first try whose commit went through, its answer lost).
        var xml = element.ToString(SaveOptions.DisableFormatting);
        using var command = new NpgsqlCommand(
            "INSERT INTO data_protection_keys (friendly_name, xml) VALUES (@name, @xml) ON CONFLICT (friendly_name) DO NOTHING", connection);
        command.Parameters.AddWithValue("name", friendlyName);
        command.Parameters.AddWithValue("xml", xml);
        if (command.ExecuteNonQuery() > 0)
        {
            return true;
        }

        using (var same = new NpgsqlCommand("SELECT count(*) FROM data_protection_keys WHERE xml = @xml", connection))
        {
            same.Parameters.AddWithValue("xml", xml);
            if ((long)same.ExecuteScalar()! > 0)
            {
                return true;
            }
        }

        command.Parameters["name"].Value = $"{friendlyName}-{Guid.NewGuid():N}";
        return command.ExecuteNonQuery() > 0;
    });

    public void Dispose() => _dataSource.Dispose();

    private static void Execute(NpgsqlConnection connection, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection);
        command.ExecuteNonQuery();
    }
}
