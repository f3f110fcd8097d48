using Appliance.Api.Models;
using Appliance.Engine;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;
using Microsoft.Extensions.DependencyInjection;

namespace Appliance.IntegrationTests;

/// <summary>
/// The real appliance host, listening on a free loopback port, serving a tiny synthetic model ("tiny", alias
/// "tiny-alias") and the packaged embedding model. Shared by the tests of one collection.
/// </summary>
public sealed class ApplianceServer : IAsyncLifetime
{
    public const string Model = "tiny";
    public const long BodyLimit = 64 * 1024;

    private readonly TempFolder _root = new("appliance-server");
    private RunningAppliance? _running;

    public Uri ApiBase => new(Http.BaseAddress!, "/v1");

    public HttpClient Http => Running.Http;

    /// <summary>The host's Appliance:DataFolder.</summary>
    public string DataFolder => _root.Combine("data");

    /// <summary>A development token with every role, for SDK clients (it goes where an OpenAI API key would).</summary>
    public string Token => Running.Token!;

    internal RunningAppliance Running => _running ?? throw new InvalidOperationException("the server has not started");

    /// <summary>The engine of the model's only replica.</summary>
    public GenerationEngine Engine =>
        ((Appliance.Engine.Pool.ReplicaRouter)_running!.App.Services.GetRequiredService<IModelCatalog>().Find(Model)!.Served!.Engine).Replicas.Single().Engine;

    public async Task InitializeAsync()
    {
        var modelFolder = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { ContextLength = 2048 }, modelFolder);
        _running = await RunningAppliance.StartAsync(
            $"--Appliance:DataFolder={DataFolder}",
            $"--Models:{Model}:Path={modelFolder}",
            $"--Models:{Model}:Aliases:0=tiny-alias",
            $"--Models:{Model}:DefaultMaxTokens=16",
            $"--Models:{Model}:IntraOpThreads=2",
            $"--Limits:MaxBodyBytes={BodyLimit}",
            "--Limits:MaxN=4",
            "--Limits:MaxTokens=4096",
            "--Batches:PollInterval=00:00:00.200",
            "--Logging:LogLevel:Default=Warning");
        await _running.WaitUntilReadyAsync();
    }

    public async Task DisposeAsync()
    {
        if (_running is not null)
        {
            await _running.DisposeAsync();
        }

        _root.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class ApplianceServerCollection : ICollectionFixture<ApplianceServer>
{
    public const string Name = "appliance server";
}
