using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Appliance.Identity.ApiKeys;

/// <summary>The API keys of a single node: a SQLite file in its identity folder (readable by the service user only).</summary>
public sealed class SqliteApiKeyTable : ApiKeyTable
{
    private readonly SqliteConnection _connection;
    private readonly Lock _gate = new();

    public SqliteApiKeyTable(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var created = !File.Exists(path);
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _connection.Open();
        if (created && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        Execute(_connection, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
        Execute(_connection, Schema);
        using var hasOwnerId = Command(_connection, $"SELECT COUNT(*) FROM pragma_table_info('api_keys') WHERE name = '{OwnerIdColumn}'");
        if (Convert.ToInt64(hasOwnerId.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 0)
        {
            try
            {
                Execute(_connection, $"ALTER TABLE api_keys ADD COLUMN {OwnerIdColumn} TEXT");
            }
            catch (SqliteException exception) when (exception.Message.Contains("duplicate column", StringComparison.OrdinalIgnoreCase))
            {
                // Another process opening the same file added it between the check and here.
            }
        }
    }

    public override string Name => "sqlite";

    protected override T WithConnection<T>(Func<DbConnection, T> work)
    {
        lock (_gate)
        {
            return work(_connection);
        }
    }

    protected override void Dispose(bool disposing)
    {
        lock (_gate)
        {
            _connection.Dispose();
        }
    }
}
