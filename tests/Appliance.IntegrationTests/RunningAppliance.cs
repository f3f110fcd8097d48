using Appliance.Host;
using Appliance.Identity;
using Appliance.Tests.Common;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Appliance.IntegrationTests;

/// <summary>
/// A real appliance host started on a free loopback port, and an HTTP client pointed at it. Unless the arguments name an
/// environment or a Keycloak realm, it runs the development identity and the client carries a token with every role.
/// </summary>
internal sealed class RunningAppliance : IAsyncDisposable
{
    public static readonly string[] AllRoles = ["appliance-user", "appliance-admin", "appliance-auditor"];

    private readonly TempFolder? _dataFolder;

    private RunningAppliance(WebApplication app, HttpClient http, TempFolder? dataFolder)
    {
        App = app;
        Http = http;
        _dataFolder = dataFolder;
    }

    public WebApplication App { get; }

    public HttpClient Http { get; }

    public static Task<RunningAppliance> StartAsync(params string[] args) => StartAsync(logs: null, args);

    /// <summary>Starts with <paramref name="logs"/> receiving what the host logs from its very start.</summary>
    public static async Task<RunningAppliance> StartAsync(Microsoft.Extensions.Logging.ILoggerProvider? logs, params string[] args)
    {
        var environment = args.Any(a => a.StartsWith("--environment", StringComparison.Ordinal) || a.StartsWith("--Identity:Authority", StringComparison.Ordinal))
            ? []
            : new[] { "--environment=Development" };
        // Each host its own data folder unless the test names one: the audit log must have one writer per chain.
        var dataFolder = args.Any(a => a.StartsWith("--Appliance:DataFolder", StringComparison.Ordinal)) ? null : new TempFolder("appliance-data");
        string[] data = dataFolder is null ? [] : [$"--Appliance:DataFolder={dataFolder.Path}"];
        var app = ApplianceApp.Create(["--urls=http://127.0.0.1:0", .. environment, .. data, .. args]);
        if (logs is not null)
        {
            app.Services.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>().AddProvider(logs);
        }

        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            dataFolder?.Dispose();
            throw;
        }
        // The API's address is the first (a management listener, when configured, comes after it).
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var running = new RunningAppliance(app, new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(2) }, dataFolder);
        if (app.Services.GetService<DevelopmentIdentity>() is not null)
        {
            running.Token = running.MintToken("tester", AllRoles);
            running.Http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", running.Token);
        }

        return running;
    }

    /// <summary>The development token the client carries (every role), or null under a real realm.</summary>
    public string? Token { get; private set; }

    /// <summary>A development token for a user with the given roles (and optionally groups and clearance).</summary>
    public string MintToken(string user, IReadOnlyList<string> roles, IReadOnlyList<string>? groups = null, string? clearance = null, TimeSpan? lifetime = null, DateTimeOffset? issuedAt = null) =>
        App.Services.GetRequiredService<DevelopmentIdentity>().Mint(
            new DevelopmentTokenRequest(user, roles, "appliance-api", lifetime ?? TimeSpan.FromMinutes(30), GroupList: groups, Clearance: clearance), issuedAt ?? DateTimeOffset.UtcNow);

    /// <summary>A client for the same server carrying another token (or none).</summary>
    public HttpClient ClientWith(string? token)
    {
        var client = new HttpClient { BaseAddress = Http.BaseAddress, Timeout = Http.Timeout };
        if (token is not null)
        {
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }

        return client;
    }

    /// <summary>Waits until /health/ready answers 200 (the declared models tried, at least one serving).</summary>
    public async Task WaitUntilReadyAsync()
    {
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

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        _dataFolder?.Dispose();
    }
}
