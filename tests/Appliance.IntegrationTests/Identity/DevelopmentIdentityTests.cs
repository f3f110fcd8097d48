using System.Net;
using System.Text;
using Appliance.Host;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;
using Microsoft.Extensions.Options;

namespace Appliance.IntegrationTests.Identity;

/// <summary>The embedded default identity: development only, loopback only, and every endpoint but /health needs a token.</summary>
public sealed class DevelopmentIdentityTests : IDisposable
{
    private readonly TempFolder _root = new("dev-identity");

    [Fact]
    public async Task Production_without_a_Keycloak_realm_refuses_to_start_naming_the_key()
    {
        await using var app = ApplianceApp.Create(["--urls=http://127.0.0.1:0", $"--Models:tiny:Path={WriteModel()}"]);
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains("Identity:Authority is required in the Production environment", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_development_identity_refuses_to_listen_beyond_loopback()
    {
        await using var app = ApplianceApp.Create(["--urls=http://0.0.0.0:0", "--environment=Development", $"--Models:tiny:Path={WriteModel()}"]);
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains("loopback only", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_endpoint_but_health_needs_a_valid_token_and_the_chat_role()
    {
        await using var running = await RunningAppliance.StartAsync($"--Models:tiny:Path={WriteModel()}", "--Appliance:BuiltInEmbeddings=false",
            $"--Appliance:DataFolder={_root.Combine("data")}", "--Logging:LogLevel:Default=None");
        await running.WaitUntilReadyAsync();

        using var anonymous = running.ClientWith(null);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health/live")).StatusCode);
        using var refused = await anonymous.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("Bearer realm=\"appliance\"", refused.Headers.WwwAuthenticate.ToString());
        Assert.Contains("\"code\":\"invalid_api_key\"", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/anything-else")).StatusCode); // the fallback policy

        using var garbage = running.ClientWith("not-a-jwt");
        using var invalid = await garbage.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, invalid.StatusCode);
        Assert.Contains("error=\"invalid_token\"", invalid.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);

        using var auditorOnly = running.ClientWith(running.MintToken("olga", ["appliance-auditor"]));
        using var forbidden = await auditorOnly.PostAsync("/v1/chat/completions", Chat("tiny"));
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        Assert.Contains("\"type\":\"permission_error\"", await forbidden.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var user = running.ClientWith(running.MintToken("ada", ["appliance-user"]));
        using var accepted = await user.PostAsync("/v1/chat/completions", Chat("tiny"));
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
    }

    [Fact]
    public async Task The_cli_mints_a_token_the_running_host_accepts()
    {
        var data = _root.Combine("data");
        await using var running = await RunningAppliance.StartAsync($"--Models:tiny:Path={WriteModel()}", "--Appliance:BuiltInEmbeddings=false",
            $"--Appliance:DataFolder={data}", "--Logging:LogLevel:Default=None");
        await running.WaitUntilReadyAsync();

        var (exitCode, output) = await ApplianceCli.RunAsync("identity", "token", "--data-folder", data, "--user", "cli-user", "--role", "appliance-user");
        Assert.True(exitCode == 0, output);

        using var client = running.ClientWith(output.Trim());
        using var response = await client.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    public void Dispose() => _root.Dispose();

    private static StringContent Chat(string model) =>
        new($$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""", Encoding.UTF8, "application/json");

    private string WriteModel()
    {
        var folder = _root.Combine("tiny");
        if (!Directory.Exists(folder))
        {
            SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, folder);
        }

        return folder;
    }
}
