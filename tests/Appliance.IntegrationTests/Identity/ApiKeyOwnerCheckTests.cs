using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Identity;

/// <summary>
/// An API key must not outlive its owner's account: with Identity:ApiKeys:OwnerCheck, the appliance looks the owner up
/// in the realm (Keycloak's admin API, with a service account holding view-users) and refuses the keys of an owner who
/// was disabled or deleted, and accepts them again once the owner is enabled.
/// </summary>
public sealed class ApiKeyOwnerCheckTests : IDisposable
{
    private const string Owner = "service-account-report-generator";
    private const string Refusals = "/audit/events?kind=request.refused&limit=1000";
    private readonly TempFolder _root = new("api-key-owners");

    [Fact]
    public async Task The_keys_of_an_owner_disabled_or_deleted_in_Keycloak_are_refused_until_the_owner_is_enabled()
    {
        await using var provider = await OidcProvider.StartAsync();
        await using var running = await StartAsync(provider, "directory-secret");
        using var operatorClient = running.ClientWith(await provider.ClientCredentialsTokenAsync("appliance-operator"));
        using var withKey = running.ClientWith(await IssueAsync(operatorClient, Owner));
        using var batchKey = running.ClientWith(await IssueAsync(operatorClient, "svc-batch")); // a service owner with no Keycloak account
        Assert.Equal(HttpStatusCode.OK, (await withKey.GetAsync("/v1/models")).StatusCode);

        await provider.SetUserEnabledAsync(Owner, enabled: false);
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusOnceSettledAsync(withKey, HttpStatusCode.Unauthorized));
        using var auditor = running.ClientWith(await provider.ClientCredentialsTokenAsync("compliance-bot"));
        Assert.Contains("its owner service-account-report-generator is disabled in Keycloak", await auditor.GetStringAsync(Refusals), StringComparison.Ordinal);
        using (var issuedWhileDisabled = running.ClientWith(await IssueAsync(operatorClient, Owner)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await issuedWhileDisabled.GetAsync("/v1/models")).StatusCode); // at once, not a round later
        }

        await provider.SetUserEnabledAsync(Owner, enabled: true);
        Assert.Equal(HttpStatusCode.OK, await StatusOnceSettledAsync(withKey, HttpStatusCode.OK));

        await provider.DeleteUserAsync(Owner);
        Assert.Equal(HttpStatusCode.Unauthorized, await StatusOnceSettledAsync(withKey, HttpStatusCode.Unauthorized));
        Assert.Contains("its owner service-account-report-generator no longer exists in Keycloak", await auditor.GetStringAsync(Refusals), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await batchKey.GetAsync("/v1/models")).StatusCode); // checked many times by now, never suspended

        // The name given to a new account does not bring the deleted account's key back; a key issued for the new
        // account works, and is pinned to it.
        await provider.RecreateUserAsync(Owner);
        using var newKey = running.ClientWith(await IssueAsync(operatorClient, Owner));
        Assert.Equal(HttpStatusCode.OK, await StatusOnceSettledAsync(newKey, HttpStatusCode.OK));
        var deadline = DateTime.UtcNow.AddSeconds(20);
        List<string?> pins;
        do
        {
            await Task.Delay(200);
            using var keys = JsonDocument.Parse(await operatorClient.GetStringAsync("/admin/api-keys"));
            pins = [.. keys.RootElement.GetProperty("data").EnumerateArray()
                .Where(k => k.GetProperty("owner").GetString() == Owner && k.GetProperty("active").GetBoolean())
                .Select(k => k.GetProperty("ownerId").GetString())];
        }
        while (pins.Contains(null) && DateTime.UtcNow < deadline);

        Assert.Equal([$"id-{Owner}-0", $"id-{Owner}-0", $"id-{Owner}-1"], pins); // the first key, the one issued while disabled, the new one
        Assert.Equal(HttpStatusCode.Unauthorized, (await withKey.GetAsync("/v1/models")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await newKey.GetAsync("/v1/models")).StatusCode);
        Assert.Contains($"its owner {Owner} is another Keycloak account now", await auditor.GetStringAsync(Refusals), StringComparison.Ordinal);

        // Where Keycloak gave the same person a new id (a user federation re-created), an administrator forgets the
        // pinned account: the next check pins the current one, and the key works again.
        using (var listed = JsonDocument.Parse(await operatorClient.GetStringAsync("/admin/api-keys")))
        {
            var first = listed.RootElement.GetProperty("data").EnumerateArray().First(k => k.GetProperty("owner").GetString() == Owner).GetProperty("id").GetString();
            using var unpin = await operatorClient.DeleteAsync($"/admin/api-keys/{first}/owner-id");
            Assert.Equal(HttpStatusCode.NoContent, unpin.StatusCode);
            using var missing = await operatorClient.DeleteAsync("/admin/api-keys/ffffffffffffffff/owner-id");
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }

        Assert.Equal(HttpStatusCode.OK, await StatusOnceSettledAsync(withKey, HttpStatusCode.OK));
        using var actions = JsonDocument.Parse(await auditor.GetStringAsync("/audit/events?kind=admin.action&limit=1000"));
        Assert.Contains(actions.RootElement.GetProperty("data").EnumerateArray(),
            e => e.GetProperty("detail").GetString()!.StartsWith($"forget the Keycloak account id-{Owner}-0 API key", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Keys_are_refused_once_owners_could_not_be_checked_for_longer_than_allowed()
    {
        await using var provider = await OidcProvider.StartAsync();
        await using var running = await StartAsync(provider, "a-rotated-secret", "--Identity:ApiKeys:OwnerCheck:MaxStaleness=00:00:03");
        using var operatorClient = running.ClientWith(await provider.ClientCredentialsTokenAsync("appliance-operator"));
        using var withKey = running.ClientWith(await IssueAsync(operatorClient, Owner));

        Assert.Equal(HttpStatusCode.Unauthorized, await StatusOnceSettledAsync(withKey, HttpStatusCode.Unauthorized));

        using var auditor = running.ClientWith(await provider.ClientCredentialsTokenAsync("compliance-bot"));
        Assert.Contains("could not be checked in Keycloak", await auditor.GetStringAsync(Refusals), StringComparison.Ordinal);
    }

    private async Task<RunningAppliance> StartAsync(OidcProvider provider, string directorySecret, params string[] more)
    {
        var model = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, model);
        var running = await RunningAppliance.StartAsync([
            $"--Identity:Authority={provider.Authority()}", "--Identity:RequireHttpsMetadata=false",
            "--Identity:ApiKeys:Enabled=true", $"--Identity:ApiKeys:ServiceOwners:0={Owner}", "--Identity:ApiKeys:ServiceOwners:1=svc-batch",
            "--Identity:ApiKeys:OwnerCheck:ClientId=appliance-directory", $"--Identity:ApiKeys:OwnerCheck:ClientSecret={directorySecret}",
            "--Identity:ApiKeys:OwnerCheck:Interval=00:00:01",
            $"--Models:open:Path={model}", "--Appliance:BuiltInEmbeddings=false", $"--Appliance:DataFolder={_root.Combine("data")}",
            "--Logging:LogLevel:Default=Warning", .. more]);
        await running.WaitUntilReadyAsync();
        return running;
    }

    private static async Task<string> IssueAsync(HttpClient administrator, string owner)
    {
        using var issue = await administrator.PostAsJsonAsync("/admin/api-keys", new { owner, name = "nightly job", roles = new[] { "appliance-user" } });
        Assert.Equal(HttpStatusCode.Created, issue.StatusCode);
        using var issued = JsonDocument.Parse(await issue.Content.ReadAsStringAsync());
        return issued.RootElement.GetProperty("key").GetString()!;
    }

    /// <summary>The status of GET /v1/models once it is <paramref name="expected"/>, or the last one after 20 s (checks run every second).</summary>
    private static async Task<HttpStatusCode> StatusOnceSettledAsync(HttpClient client, HttpStatusCode expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            using var response = await client.GetAsync("/v1/models");
            if (response.StatusCode == expected || DateTime.UtcNow > deadline)
            {
                return response.StatusCode;
            }

            await Task.Delay(200);
        }
    }

    public void Dispose() => _root.Dispose();
}
