using System.Security.Cryptography;
using Appliance.Audit.Chain;
using Appliance.Audit.Stores;
using Appliance.Tests.Common;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Audit.Tests;

/// <summary>A real SQLite audit store in a temp folder, its signing key, and helpers to fill and read it.</summary>
internal sealed class AuditChainFixture : IAsyncDisposable
{
    public AuditChainFixture(AuditLogOptions? options = null)
    {
        Folder = new TempFolder("audit");
        Store = new SqliteAuditStore(Folder.Combine("audit.db"));
        Signer = CheckpointSigner.LoadOrCreate(Folder.Combine("checkpoint-key.pem"));
        Log = new AuditLog(Store, Signer, "node-1", TimeProvider.System, options ?? new AuditLogOptions(), NullLogger<AuditLog>.Instance);
    }

    public TempFolder Folder { get; }

    public SqliteAuditStore Store { get; }

    public CheckpointSigner Signer { get; }

    public AuditLog Log { get; private set; }

    public static AuditRecord Record(int i) => new()
    {
        Time = DateTimeOffset.UtcNow,
        Kind = i % 3 == 0 ? AuditKinds.Refused : AuditKinds.Accepted,
        RequestId = $"req-{i}",
        Subject = $"sub-{i % 5}",
        Username = $"user{i % 5}",
        Client = "appliance-console",
        Roles = ["appliance-user"],
        SourceIp = "127.0.0.1",
        Method = "POST",
        Endpoint = "/v1/chat/completions",
        Model = "tiny",
        ModelDigest = "sha256:abc",
        Classification = "internal",
        Status = i % 3 == 0 ? 403 : 200,
        PromptTokens = i,
        CompletionTokens = 2 * i,
        DurationMs = i * 1.23456789,
        Detail = i % 7 == 0 ? "naïve ünïcödé \"quoted\" détail" : null,
    };

    public ECDsa PublicKey()
    {
        var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(CheckpointSigner.PublicKeyPath(Folder.Combine("checkpoint-key.pem"))));
        return key;
    }

    /// <summary>A new writer on the same store and key, as after a restart (the one before must have been closed).</summary>
    public void Reopen(AuditLogOptions? options = null) =>
        Log = new AuditLog(Store, Signer, "node-1", TimeProvider.System, options ?? new AuditLogOptions(), NullLogger<AuditLog>.Instance);

    /// <summary>Stops the writer (which signs a final checkpoint); the store stays open for reading and tampering.</summary>
    public async Task CloseLogAsync() => await Log.DisposeAsync();

    /// <summary>Runs a statement on the store's file behind its back, as an attacker with file access would.</summary>
    public void Tamper(string sql)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Folder.Combine("audit.db")};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        Assert.True(command.ExecuteNonQuery() > 0, $"the tampering statement changed nothing: {sql}");
    }

    public ChainVerification Verify() =>
        ChainVerifier.Verify(Store.Chain("node-1"), Store.Checkpoints("node-1"), PublicKey(), Store.Retention("node-1"));

    public async ValueTask DisposeAsync()
    {
        await Log.DisposeAsync();
        Store.Dispose();
        Signer.Dispose();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Folder.Dispose();
    }
}
