using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Identity;

/// <summary>
/// The real host trusting a real OpenID provider's "appliance" realm (Keycloak's layout and token shape), with three
/// models: "open" (public), "finance" (role finance-analyst or group /finance) and "secret" (restricted).
/// </summary>
public sealed class KeycloakAppliance : IAsyncLifetime
{
    private readonly TempFolder _root = new("keycloak-appliance");
    private RunningAppliance? _running;

    public OidcProvider Provider { get; private set; } = null!;

    internal RunningAppliance Running => _running ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync()
    {
        Provider = await OidcProvider.StartAsync();
        var model = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, model);
        _running = await RunningAppliance.StartAsync(
            $"--Identity:Authority={Provider.Authority()}",
            "--Identity:RequireHttpsMetadata=false", // the test realm is on loopback over http
            "--Identity:JwksRefreshInterval=00:00:01",
            "--Identity:ClockSkew=00:00:05",
            // Every test client but "other-application"; the console's client is accepted without being listed.
            "--Identity:AllowedClients:0=report-generator", "--Identity:AllowedClients:1=metrics-scraper", "--Identity:AllowedClients:2=cleared-analyst",
            "--Identity:AllowedClients:3=compliance-bot", "--Identity:AllowedClients:4=appliance-operator",
            $"--Models:open:Path={model}", "--Models:open:Classification=public",
            $"--Models:finance:Path={model}", "--Models:finance:AllowedRoles:0=finance-analyst", "--Models:finance:AllowedGroups:0=/finance",
            $"--Models:secret:Path={model}", "--Models:secret:Classification=restricted",
            "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={_root.Combine("data")}", "--Logging:LogLevel:Default=Warning");
        await _running.WaitUntilReadyAsync();
    }

    public HttpClient ClientWith(string? token) => Running.ClientWith(token);

    public async Task DisposeAsync()
    {
        if (_running is not null)
        {
            await _running.DisposeAsync();
        }

        if (Provider is not null)
        {
            await Provider.DisposeAsync();
        }

        _root.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class KeycloakApplianceCollection : ICollectionFixture<KeycloakAppliance>
{
    public const string Name = "appliance behind an OpenID provider";
}
