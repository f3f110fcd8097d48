using System.Data;
using Npgsql;

namespace Appliance.Audit.Postgres;

/// <summary>
/// Work on a pooled PostgreSQL connection that survives a server restart. Npgsql hands out idle connections without
/// asking the server, so after a restart (or a failover) each idle connection of the pool fails its next command with
/// "terminating connection due to administrator command": one refused request per pooled connection. Here such a
/// failure empties the pool (its other idle connections ended with it) and the work runs once more on a new connection.
/// </summary>
public static class PooledConnections
{
    /// <summary>
    /// Runs <paramref name="work"/>, again once if the server had ended the connection. A connection the server ended
    /// rolled back whatever it had open, so the work starts over; only a commit whose answer was lost may have taken
    /// effect, which callers that insert under a key see as a duplicate rather than a second row.
    /// </summary>
    /// <param name="lost">Called before the second try, when the first found the server had ended its connection.</param>
    public static T Run<T>(NpgsqlDataSource source, Func<NpgsqlConnection, T> work, Action? lost = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            using var connection = source.OpenConnection();
            try
            {
                return work(connection);
            }
            catch (NpgsqlException exception) when (attempt == 1 && Lost(exception, connection))
            {
                source.Clear();
                lost?.Invoke();
            }
        }
    }

    /// <summary>Whether the connection is gone (ended by the server, or its socket broke), not the statement refused.</summary>
    public static bool Lost(NpgsqlException exception, NpgsqlConnection connection) =>
        exception is PostgresException { SqlState: "57P01" or "57P02" or "57P03" } // admin_shutdown, crash_shutdown, cannot_connect_now
        || (exception is not PostgresException && (connection.FullState.HasFlag(ConnectionState.Broken) || connection.State == ConnectionState.Closed));
}
