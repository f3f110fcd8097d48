using System.Net;
using System.Text.Json;
using Appliance.Audit.Stores;
using Appliance.Tests.Common;
using Microsoft.Extensions.Logging;

namespace Appliance.IntegrationTests.Identity;

/// <summary>
/// A node whose realm cannot be read (Identity:Authority names a realm that does not exist, or Keycloak is down) cannot
/// check tokens: callers are told the service is unavailable for now (503, not a 500 that reads as a bug in the
/// appliance nor a 401 that blames their token), each refusal is audited, and the log names the address it tried.
/// </summary>
public sealed class IdentityProviderOutageTests : IDisposable
{
    private readonly TempFolder _root = new("identity-outage");

    [Fact]
    public async Task A_realm_that_cannot_be_read_answers_503_in_the_api_s_format_and_is_audited_and_logged()
    {
        await using var provider = await OidcProvider.StartAsync();
        var token = await provider.ClientCredentialsTokenAsync("report-generator");
        using var logs = new ListLoggerProvider();
        var running = await RunningAppliance.StartAsync(logs,
            $"--Identity:Authority={provider.Authority("no-such-realm")}", "--Identity:RequireHttpsMetadata=false",
            "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={_root.Combine("data")}", "--Logging:LogLevel:Default=Warning");
        try
        {
            // Not ready: the load balancer leaves it out, and an install stops there.
            var health = await UnreadyAsync(running);
            Assert.Contains("identity: Unhealthy: the realm's OpenID metadata has not been read", health, StringComparison.Ordinal);
            Assert.DoesNotContain("127.0.0.1", health, StringComparison.Ordinal); // anonymous: where and what it answered is in the log
            using var client = running.ClientWith(token);

            using var models = await client.GetAsync("/v1/models");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, models.StatusCode);
            Assert.True(models.Headers.RetryAfter?.Delta > TimeSpan.Zero);
            using (var error = JsonDocument.Parse(await models.Content.ReadAsStringAsync()))
            {
                Assert.Equal("identity_provider_unavailable", error.RootElement.GetProperty("error").GetProperty("code").GetString());
            }

            using var audit = await client.GetAsync("/audit/events");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, audit.StatusCode);
            Assert.Equal("application/problem+json", audit.Content.Headers.ContentType?.MediaType);

            // Without a token, or with something that is no token at all, nothing needs the realm: the usual 401.
            using var anonymous = running.ClientWith(null);
            Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/v1/models")).StatusCode);
            using var garbage = running.ClientWith("not-a-jwt");
            Assert.Equal(HttpStatusCode.Unauthorized, (await garbage.GetAsync("/v1/models")).StatusCode);

            var unavailable = Assert.Single(logs.Logger.Entries, e => e.EventId.Id == 3025); // once, not once a request
            Assert.Equal(LogLevel.Error, unavailable.Level);
            Assert.Contains(provider.Authority("no-such-realm"), unavailable.Message, StringComparison.Ordinal);
            Assert.True(unavailable.Message.Contains("404", StringComparison.Ordinal), unavailable.Message); // the cause, legible
        }
        finally
        {
            await running.DisposeAsync();
        }

        using var store = SqliteAuditStore.OpenReadOnly(Path.Combine(_root.Combine("data"), "audit", "audit.db"));
        var refused = store.Chain(store.Nodes().Single()).Select(e => e.Record).Where(r => r.Status == 503).ToList();
        Assert.Equal(2, refused.Count);
        Assert.All(refused, r => Assert.StartsWith("identity provider unavailable", r.Detail, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Once_the_realm_was_read_a_keycloak_outage_keeps_tokens_checked_with_the_keys_it_had()
    {
        var provider = await OidcProvider.StartAsync();
        await using var running = await RunningAppliance.StartAsync(
            $"--Identity:Authority={provider.Authority()}", "--Identity:RequireHttpsMetadata=false",
            "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={_root.Combine("data")}", "--Logging:LogLevel:Default=None");
        await running.WaitUntilReadyAsync();
        var token = await provider.ClientCredentialsTokenAsync("report-generator");
        var forged = await provider.ClientCredentialsTokenAsync("report-generator", OidcProvider.OtherRealm); // another realm's key and issuer
        using var client = running.ClientWith(token);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/models")).StatusCode);

        await provider.DisposeAsync(); // Keycloak goes down

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/models")).StatusCode);
        using var stranger = running.ClientWith(forged);
        Assert.Equal(HttpStatusCode.Unauthorized, (await stranger.GetAsync("/v1/models")).StatusCode); // its fault, not the outage's
        Assert.Equal(HttpStatusCode.OK, (await running.Http.GetAsync("/health/ready")).StatusCode); // still serving: it stays in
    }

    [Fact]
    public async Task A_keycloak_that_comes_up_after_the_node_is_read_without_a_restart()
    {
        // Keycloak and the node boot together (a power cut): the node's first reads are refused, and it must not need
        // a restart once Keycloak answers at the address it was told.
        var port = HostProcess.FreePort();
        var authority = $"http://127.0.0.1:{port}/realms/{OidcProvider.Realm}";
        using var logs = new ListLoggerProvider();
        await using var running = await RunningAppliance.StartAsync(logs,
            $"--Identity:Authority={authority}", "--Identity:RequireHttpsMetadata=false",
            "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={_root.Combine("data")}", "--Logging:LogLevel:Default=Warning",
            "--Logging:LogLevel:Appliance.Host.Identity=Information");
        await UnreadyAsync(running);
        var down = Assert.Single(logs.Logger.Entries, e => e.EventId.Id == 3025);
        Assert.Contains("Connection refused", down.Message, StringComparison.OrdinalIgnoreCase);
        using (var early = running.ClientWith(ForgedTokens.Sign(ForgedTokens.Payload(authority, DateTimeOffset.UtcNow), ForgedTokens.NewKey())))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await early.GetAsync("/v1/models")).StatusCode);
        }

        await using var provider = await OidcProvider.StartOnPortAsync(port);
        Assert.Equal(authority, provider.Authority());
        await running.WaitUntilReadyAsync(); // the watch's next retry reads it: at most 30 s later
        Assert.Contains(logs.Logger.Entries, e => e.EventId.Id == 3026);

        using var client = running.ClientWith(await provider.ClientCredentialsTokenAsync("report-generator"));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/models")).StatusCode);
        using var stranger = running.ClientWith(await provider.ClientCredentialsTokenAsync("report-generator", OidcProvider.OtherRealm));
        Assert.Equal(HttpStatusCode.Unauthorized, (await stranger.GetAsync("/v1/models")).StatusCode); // checked again, not let through
    }

    [Fact]
    public async Task With_api_keys_on_a_node_whose_realm_cannot_be_read_stays_in_the_load_balancer_as_degraded()
    {
        await using var provider = await OidcProvider.StartAsync();
        await using var running = await RunningAppliance.StartAsync(
            $"--Identity:Authority={provider.Authority("no-such-realm")}", "--Identity:RequireHttpsMetadata=false", "--Identity:ApiKeys:Enabled=true",
            "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={_root.Combine("data")}", "--Logging:LogLevel:Default=None");

        var deadline = DateTime.UtcNow.AddMinutes(1);
        string body;
        do
        {
            using var ready = await running.Http.GetAsync("/health/ready");
            body = await ready.Content.ReadAsStringAsync();
            Assert.True(DateTime.UtcNow < deadline, body);
            if (ready.StatusCode == HttpStatusCode.OK)
            {
                break;
            }

            await Task.Delay(50);
        }
        while (true);

        // API keys are still checked here; the Ansible role's ready check looks for this line and waits on.
        Assert.Contains("identity: Degraded: the realm's OpenID metadata has not been read", body, StringComparison.Ordinal);
    }

    public void Dispose() => _root.Dispose();

    /// <summary>The readiness answer once the node has tried to read its realm (and loaded its models).</summary>
    private static async Task<string> UnreadyAsync(RunningAppliance running)
    {
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (true)
        {
            using var ready = await running.Http.GetAsync("/health/ready");
            var body = await ready.Content.ReadAsStringAsync();
            if (body.Contains("identity: Unhealthy", StringComparison.Ordinal) && !body.Contains("loading the declared models", StringComparison.Ordinal))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
                return body;
            }

            Assert.True(DateTime.UtcNow < deadline, body);
            await Task.Delay(50);
        }
    }
}
