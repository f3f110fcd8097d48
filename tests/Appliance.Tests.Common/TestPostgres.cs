using Npgsql;

namespace Appliance.Tests.Common;

/// <summary>
/// A database of its own on the test PostgreSQL server, dropped afterwards. The server comes from
/// APPLIANCE_TEST_POSTGRES (an Npgsql connection string), by default the cluster .ci/run starts on 127.0.0.1:5439.
/// </summary>
public sealed class TestPostgres : IDisposable
{
    public const string Variable = "APPLIANCE_TEST_POSTGRES";
    private const string Default = "Host=127.0.0.1;Port=5439;Username=postgres;Database=postgres";

    private readonly string _server;

    public TestPostgres()
    {
        _server = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } configured ? configured : Default;
        Database = $"appliance_test_{Guid.NewGuid():N}";
        try
        {
            Run($"CREATE DATABASE {Database}");
        }
        catch (NpgsqlException exception)
        {
            throw new InvalidOperationException(
                $"no PostgreSQL server for the tests at '{_server}' ({exception.Message}); .ci/run starts one, or set {Variable}", exception);
        }

        ConnectionString = new NpgsqlConnectionStringBuilder(_server) { Database = Database, Pooling = false }.ToString();
    }

    public string Database { get; }

    public string ConnectionString { get; }

    public void Dispose() => Run($"DROP DATABASE IF EXISTS {Database} WITH (FORCE)");

    private void Run(string sql)
    {
        using var connection = new NpgsqlConnection(_server);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
