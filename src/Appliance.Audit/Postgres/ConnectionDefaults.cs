using System.Data.Common;
using Npgsql;

namespace Appliance.Audit.Postgres;

/// <summary>
/// Connection settings for the shared PostgreSQL where the operator set none. A database that drops packets (a
/// network partition, a firewall change) answers nothing: every connection attempt waits out its timeout, and
/// Npgsql's 15 s, with the retry on a new connection after a lost one, would hold each audit batch, and every request
/// waiting in it, for most of a minute. Connecting to a healthy database on the local network takes milliseconds.
/// </summary>
public static class ConnectionDefaults
{
    /// <summary>Seconds to open a connection, unless the connection string says.</summary>
    public const int ConnectSeconds = 5;

    /// <summary><paramref name="connectionString"/> with <see cref="ConnectSeconds"/> as its Timeout when it names none.</summary>
    public static string Apply(string connectionString)
    {
        // Only the keys the operator wrote (Npgsql's own builder reports every key as present).
        var given = new DbConnectionStringBuilder { ConnectionString = connectionString };
        if (given.ContainsKey("Timeout"))
        {
            return connectionString;
        }

        return new NpgsqlConnectionStringBuilder(connectionString) { Timeout = ConnectSeconds }.ToString();
    }
}
