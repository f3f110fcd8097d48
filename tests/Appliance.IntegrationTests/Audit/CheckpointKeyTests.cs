using System.Security.Cryptography;
using System.Text.Json;
using Appliance.Host;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Audit;

/// <summary>
/// The checkpoint key is created with a node's first chain and must stay with it: a node whose key file went missing
/// (left out of a backup: it is readable by the service alone) or was swapped must not start signing with a new key,
/// which would make every checkpoint before it read as forged and overwrite the public key auditors hold.
/// </summary>
public sealed class CheckpointKeyTests : IDisposable
{
    private readonly TempFolder _root = new("checkpoint-key");

    [Fact]
    public async Task A_node_whose_chain_is_signed_does_not_start_with_a_missing_or_other_key()
    {
        var data = _root.Combine("data");
        string[] settings = [$"--Appliance:DataFolder={data}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None"];
        await using (var first = await RunningAppliance.StartAsync(settings))
        {
            (await first.Http.GetAsync("/v1/models")).EnsureSuccessStatusCode(); // audited; stopping signs a checkpoint
        }

        var key = Path.Combine(data, "audit", "checkpoint-key.pem");
        var publicKey = Path.Combine(data, "audit", "checkpoint-key.pub.pem");
        var (original, originalPublic) = (File.ReadAllText(key), File.ReadAllText(publicKey));

        File.Delete(key);
        var missing = await Assert.ThrowsAsync<SettingsException>(() => RunningAppliance.StartAsync(settings));
        Assert.Contains($"the checkpoint key {key} is missing, yet the chain of node '{Environment.MachineName}' is signed with key", missing.Message, StringComparison.Ordinal);
        Assert.Contains("restore it and checkpoint-key.pub.pem from the backup", missing.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(key)); // no new key made in its place
        Assert.Equal(originalPublic, File.ReadAllText(publicKey)); // nor the auditors' public key overwritten

        using (var other = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            File.WriteAllText(key, other.ExportPkcs8PrivateKeyPem());
        }

        // Another key (a cluster moved to one shared key) is allowed, but said: the checkpoints before need the old public key.
        using (var logs = new ListLoggerProvider())
        {
            await using var swapped = await RunningAppliance.StartAsync(logs, [.. settings, "--Logging:LogLevel:Appliance.Host=Warning"]);
            var warning = Assert.Single(logs.Logger.Entries, e => e.EventId.Id == 4006);
            Assert.Contains($"was signed with key {KeyId(originalPublic)}", warning.Message, StringComparison.Ordinal);
        }

        File.WriteAllText(key, original); // restored from the backup
        File.WriteAllText(publicKey, originalPublic);
        await using var restored = await RunningAppliance.StartAsync(settings);
        using var verdict = JsonDocument.Parse(await restored.Http.GetStringAsync("/audit/verify?full=true"));
        Assert.True(verdict.RootElement.GetProperty("ok").GetBoolean(), verdict.RootElement.GetRawText());
    }

    [Fact]
    public async Task A_chain_that_retention_emptied_still_names_its_key()
    {
        // Idle for the whole retention period: every entry and checkpoint went, the signed retention record stays, and
        // the chain goes on from it, so it needs the key that signed it as much as one with checkpoints.
        var data = _root.Combine("data");
        string[] settings = [$"--Appliance:DataFolder={data}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None"];
        await using (var first = await RunningAppliance.StartAsync(settings))
        {
            (await first.Http.GetAsync("/v1/models")).EnsureSuccessStatusCode();
        }

        var key = Path.Combine(data, "audit", "checkpoint-key.pem");
        using (var store = new Appliance.Audit.Stores.SqliteAuditStore(Path.Combine(data, "audit", "audit.db")))
        using (var signer = Appliance.Audit.Chain.CheckpointSigner.LoadOrCreate(key))
        {
            Assert.NotNull(Appliance.Audit.AuditRetention.Apply(store, signer, Environment.MachineName, DateTimeOffset.UtcNow.AddMinutes(1), DateTimeOffset.UtcNow));
            Assert.Null(store.Head(Environment.MachineName));
            Assert.Empty(store.Checkpoints(Environment.MachineName));
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        File.Delete(key);
        var missing = await Assert.ThrowsAsync<SettingsException>(() => RunningAppliance.StartAsync(settings));
        Assert.Contains($"the checkpoint key {key} is missing, yet the chain of node '{Environment.MachineName}' is signed with key", missing.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(key));
    }

    [Fact]
    public async Task A_new_node_id_begins_a_new_chain_with_a_new_key()
    {
        var data = _root.Combine("data");
        string[] settings = [$"--Appliance:DataFolder={data}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None"];
        await using (var first = await RunningAppliance.StartAsync(settings))
        {
            (await first.Http.GetAsync("/v1/models")).EnsureSuccessStatusCode();
        }

        File.Delete(Path.Combine(data, "audit", "checkpoint-key.pem"));
        await using var renamed = await RunningAppliance.StartAsync([.. settings, "--Audit:NodeId=node-after-key-loss"]);
        (await renamed.Http.GetAsync("/v1/models")).EnsureSuccessStatusCode();
    }

    public void Dispose() => _root.Dispose();

    private static string KeyId(string publicKeyPem)
    {
        using var key = ECDsa.Create();
        key.ImportFromPem(publicKeyPem);
        return Appliance.Audit.Chain.CheckpointSigner.KeyIdOf(key);
    }
}
