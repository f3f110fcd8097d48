using Appliance.Api.Models;
using Appliance.Engine;
using Appliance.Host;
using Appliance.Runtime.Onnx.Synthetic;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Appliance.IntegrationTests;

/// <summary>
/// The real appliance host, listening on a free loopback port, serving a tiny synthetic model ("tiny", alias
/// "tiny-alias"). Shared by the tests of one collection.
/// </summary>
public sealed class ApplianceServer : IAsyncLifetime
{
    public const string Model = "tiny";
    public const long BodyLimit = 64 * 1024;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "appliance-it", Guid.NewGuid().ToString("N"));
    private WebApplication? _app;

    public Uri BaseAddress { get; private set; } = new("http://127.0.0.1");

    public Uri ApiBase => new(BaseAddress, "/v1");

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromMinutes(2) };

    public GenerationEngine Engine =>
        (GenerationEngine)_app!.Services.GetRequiredService<IModelCatalog>().Find(Model)!.Served!.Engine;

    public async Task InitializeAsync()
    {
        var modelFolder = Path.Combine(_root, "tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny with { ContextLength = 2048 }, modelFolder);
        _app = ApplianceApp.Create(
        [
            "--urls=http://127.0.0.1:0",
            $"--Appliance:DataFolder={Path.Combine(_root, "data")}",
            $"--Models:{Model}:Path={modelFolder}",
            $"--Models:{Model}:Aliases:0=tiny-alias",
            $"--Models:{Model}:DefaultMaxTokens=16",
            $"--Models:{Model}:IntraOpThreads=2",
            $"--Limits:MaxBodyBytes={BodyLimit}",
            "--Limits:MaxN=4",
            "--Limits:MaxTokens=4096",
            "--Logging:LogLevel:Default=Warning",
        ]);
        await _app.StartAsync();
        var address = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        BaseAddress = new Uri(address);
        Http.BaseAddress = BaseAddress;

        var deadline = DateTime.UtcNow.AddMinutes(1);
        while ((await Http.GetAsync("/health/ready")).StatusCode != System.Net.HttpStatusCode.OK)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("the appliance did not become ready within a minute");
            }

            await Task.Delay(50);
        }
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // Leftovers in the temp folder are harmless.
        }
    }
}

[CollectionDefinition(Name)]
public sealed class ApplianceServerCollection : ICollectionFixture<ApplianceServer>
{
    public const string Name = "appliance server";
}
