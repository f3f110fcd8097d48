using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests;

/// <summary>
/// Appliance nodes of one cluster in this process: one real PostgreSQL for their audit chains, API keys and console
/// key ring, one checkpoint key (as Ansible distributes it), and a tiny model each serves.
/// </summary>
internal sealed class TestCluster : IDisposable
{
    public TestCluster(string name)
    {
        Root = new TempFolder(name);
        Model = Root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, Model);
    }

    public TempFolder Root { get; }

    public TestPostgres Database { get; } = new();

    public string Model { get; }

    /// <summary>The cluster's checkpoint key (private); its public half is beside it as checkpoint-key.pub.pem.</summary>
    public string CheckpointKey => Root.Combine("checkpoint-key.pem");

    /// <summary>Starts node <paramref name="node"/> on the shared database, with <paramref name="settings"/> on top, and waits until it is ready.</summary>
    public async Task<RunningAppliance> StartNodeAsync(string node, params string[] settings)
    {
        var running = await RunningAppliance.StartAsync(
        [
            $"--Models:tiny:Path={Model}", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None",
            "--Audit:Store=postgresql", $"--Audit:PostgresConnectionString={Database.ConnectionString}", $"--Audit:NodeId={node}",
            $"--Audit:CheckpointKeyPath={CheckpointKey}", .. settings,
        ]);
        await running.WaitUntilReadyAsync();
        return running;
    }

    public void Dispose()
    {
        Database.Dispose();
        Root.Dispose();
    }
}
