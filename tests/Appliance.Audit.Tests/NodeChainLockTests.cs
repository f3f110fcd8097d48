using System.Net;
using System.Net.Sockets;
using Appliance.Audit.Postgres;
using Appliance.Tests.Common;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace Appliance.Audit.Tests;

/// <summary>
/// The node's chain lock after a network cut the server has not noticed: the lock's session lives on at the server
/// while this process sees its connection broken. A loopback proxy between the two makes that cut for real.
/// </summary>
public sealed class NodeChainLockTests : IDisposable
{
    private readonly TestPostgres _database = new();
    private readonly CuttableProxy _proxy;

    public NodeChainLockTests()
    {
        var server = new NpgsqlConnectionStringBuilder(_database.ConnectionString);
        _proxy = new CuttableProxy(server.Host!, server.Port);
    }

    [Fact]
    public void Its_own_session_the_server_kept_is_ended_and_the_lock_taken_again()
    {
        using var nodeLock = new NodeChainLock(ThroughProxy(), "node-a", TimeSpan.FromHours(1), NullLogger.Instance);
        var before = HolderPid("node-a");

        _proxy.CutClients();
        Assert.Equal(before, HolderPid("node-a")); // the server still holds the lock for the session it kept
        nodeLock.Check();

        Assert.Null(nodeLock.Refusal);
        var after = HolderPid("node-a");
        Assert.NotNull(after);
        Assert.NotEqual(before, after);
        Assert.False(SessionAlive(before!.Value)); // the kept session was ended, not left to the server's keepalives
        nodeLock.EnsureHeld();
    }

    [Fact]
    public void The_lock_taken_by_another_process_meanwhile_stops_this_one_writing()
    {
        using var nodeLock = new NodeChainLock(ThroughProxy(), "node-a", TimeSpan.FromHours(1), NullLogger.Instance);
        var before = HolderPid("node-a")!.Value;
        _proxy.CutClients();
        using var other = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_database.ConnectionString) { ApplicationName = "another appliance" }.ToString());
        other.Open();
        Scalar(other, $"SELECT pg_terminate_backend({before}, 5000)");
        Assert.Equal(true, Scalar(other, "SELECT pg_try_advisory_lock(hashtext('appliance-audit-node:node-a')::bigint)"));

        nodeLock.Check();

        Assert.Contains("another appliance process", nodeLock.Refusal, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(nodeLock.EnsureHeld);
    }

    public void Dispose()
    {
        _proxy.Dispose();
        _database.Dispose();
    }

    private string ThroughProxy() =>
        new NpgsqlConnectionStringBuilder(_database.ConnectionString) { Host = IPAddress.Loopback.ToString(), Port = _proxy.Port }.ToString();

    private int? HolderPid(string node)
    {
        using var connection = new NpgsqlConnection(_database.ConnectionString);
        connection.Open();
        using var command = new NpgsqlCommand(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            + "AND ((classid::bigint << 32) | objid::bigint) = hashtext('appliance-audit-node:' || @node)::bigint",
            connection);
        command.Parameters.AddWithValue("node", node);
        return command.ExecuteScalar() is int pid ? pid : null;
    }

    private bool SessionAlive(int pid)
    {
        using var connection = new NpgsqlConnection(_database.ConnectionString);
        connection.Open();
        return Scalar(connection, $"SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}") is 1L;
    }

    private static object? Scalar(NpgsqlConnection connection, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection);
        return command.ExecuteScalar();
    }

    /// <summary>
    /// A loopback TCP proxy to PostgreSQL whose client side can be cut while its server side stays open: what a network
    /// cut looks like before the server's keepalives notice it.
    /// </summary>
    private sealed class CuttableProxy : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly string _serverHost;
        private readonly int _serverPort;
        private readonly List<(TcpClient Client, TcpClient Server)> _links = [];
        private readonly CancellationTokenSource _stop = new();

        public CuttableProxy(string serverHost, int serverPort)
        {
            (_serverHost, _serverPort) = (serverHost, serverPort);
            _listener.Start();
            _ = Task.Run(AcceptAsync);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        /// <summary>Closes every client side (reset), leaving the server sides open.</summary>
        public void CutClients()
        {
            lock (_links)
            {
                foreach (var (client, _) in _links)
                {
                    client.Client.LingerState = new LingerOption(true, 0);
                    client.Close();
                }
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
            lock (_links)
            {
                foreach (var (client, server) in _links)
                {
                    client.Dispose();
                    server.Dispose();
                }
            }
        }

        private async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await _listener.AcceptTcpClientAsync(_stop.Token);
                }
                catch (Exception exception) when (exception is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                var server = new TcpClient();
                await server.ConnectAsync(_serverHost, _serverPort);
                lock (_links)
                {
                    _links.Add((client, server));
                }

                _ = PumpAsync(client, server);
                _ = PumpAsync(server, client);
            }
        }

        // Copies one way until either side goes; neither side is closed here (a cut leaves the server side open).
        private static async Task PumpAsync(TcpClient from, TcpClient to)
        {
            var buffer = new byte[16384];
            try
            {
                while (true)
                {
                    var read = await from.GetStream().ReadAsync(buffer);
                    if (read == 0)
                    {
                        return;
                    }

                    await to.GetStream().WriteAsync(buffer.AsMemory(0, read));
                }
            }
            catch (Exception exception) when (exception is IOException or ObjectDisposedException or InvalidOperationException or SocketException)
            {
                // one side was cut or closed
            }
        }
    }
}
