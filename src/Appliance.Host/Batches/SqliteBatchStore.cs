using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace Appliance.Host.Batches;

/// <summary>A single node's batches and files: one SQLite file in the data folder's batches folder (the service user's only).</summary>
internal sealed class SqliteBatchStore : SqlBatchStore
{
    private readonly string _connectionString;

    public SqliteBatchStore(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var created = !File.Exists(path);
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, DefaultTimeout = 30 }.ToString();
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        if (created && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        using var command = Command(connection, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; " + Schema);
        command.ExecuteNonQuery();
    }

    protected override string BinaryType => "BLOB";

    protected override async Task<DbConnection> OpenAsync(CancellationToken cancellation)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellation);
        using var synchronous = Command(connection, "PRAGMA synchronous=FULL;");
        await synchronous.ExecuteNonQueryAsync(cancellation);
        return connection;
    }

    public override void Dispose()
    {
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
    }
}
