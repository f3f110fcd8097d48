using System.Net;
using System.Text;
using System.Text.Json;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Identity;

/// <summary>Real tokens from a real OpenID provider in Keycloak's layout, and forged ones, against the running host.</summary>
[Collection(KeycloakApplianceCollection.Name)]
public sealed class KeycloakTokenTests(KeycloakAppliance appliance)
{
    private OidcProvider Provider => appliance.Provider;

    [Fact]
    public async Task A_service_account_token_is_accepted_like_a_user_s()
    {
        using var client = appliance.ClientWith(await Provider.ClientCredentialsTokenAsync("report-generator"));
        using var response = await Chat(client, "open");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["open"], await ModelIds(client)); // finance needs a role or group; secret needs restricted clearance
    }

    [Fact]
    public async Task A_person_signed_in_with_authorization_code_and_PKCE_is_accepted_within_their_clearance()
    {
        using var ada = appliance.ClientWith(await Provider.SignInAsync("ada")); // cleared for confidential
        Assert.Equal(HttpStatusCode.OK, (await Chat(ada, "open")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await Chat(ada, "secret")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await Chat(ada, "finance")).StatusCode);
    }

    [Fact]
    public async Task Group_membership_and_a_high_clearance_open_the_guarded_models()
    {
        using var analyst = appliance.ClientWith(await Provider.ClientCredentialsTokenAsync("cleared-analyst"));
        Assert.Equal(["finance", "open", "secret"], await ModelIds(analyst));
        Assert.Equal(HttpStatusCode.OK, (await Chat(analyst, "finance")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Chat(analyst, "secret")).StatusCode);
    }

    [Theory]
    [InlineData("compliance-bot")] // auditor only
    [InlineData("metrics-scraper")] // no appliance role at all
    public async Task A_valid_token_without_the_chat_role_is_forbidden(string clientId)
    {
        using var client = appliance.ClientWith(await Provider.ClientCredentialsTokenAsync(clientId));
        using var response = await Chat(client, "open");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("\"code\":\"permission_denied\"", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_signed_in_auditor_cannot_chat()
    {
        using var bob = appliance.ClientWith(await Provider.SignInAsync("bob"));
        Assert.Equal(HttpStatusCode.Forbidden, (await Chat(bob, "open")).StatusCode);
    }

    public static TheoryData<string> ForgeryKinds() =>
    [
        "expired", "not yet valid", "other realm", "another key", "another key under the same kid", "alg none", "HS256 with the public key",
        "wrong audience", "tampered payload", "no expiry",
    ];

    [Theory]
    [MemberData(nameof(ForgeryKinds))]
    public async Task A_bad_token_is_refused_with_401_and_no_detail(string kind)
    {
        var token = await Forge(kind);
        using var client = appliance.ClientWith(token);
        using var response = await Chat(client, "open");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Bearer realm=\"appliance\", error=\"invalid_token\"", response.Headers.WwwAuthenticate.ToString());
        var body = await response.Content.ReadAsStringAsync();
        Assert.Contains("\"code\":\"invalid_api_key\"", body, StringComparison.Ordinal);
        Assert.DoesNotContain("IDX", body, StringComparison.Ordinal); // no library diagnostics for an attacker
    }

    [Fact]
    public async Task A_control_token_signed_with_the_realm_key_is_accepted()
    {
        // Proves the forgeries above fail for their one defect, not because hand-signed tokens never pass.
        using var client = appliance.ClientWith(ForgedTokens.Sign(ForgedTokens.Payload(Provider.Authority(), DateTimeOffset.UtcNow), Provider.SigningKey()));
        Assert.Equal(HttpStatusCode.OK, (await Chat(client, "open")).StatusCode);
    }

    [Fact]
    public async Task A_genuine_token_of_a_client_not_in_the_allowed_list_is_refused_and_the_audit_names_the_client()
    {
        using var other = appliance.ClientWith(await Provider.ClientCredentialsTokenAsync("other-application")); // audience and chat role
        using var response = await Chat(other, "open");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Bearer realm=\"appliance\", error=\"invalid_token\"", response.Headers.WwwAuthenticate.ToString());
        Assert.DoesNotContain("other-application", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal); // no detail for the caller
        using var auditor = appliance.ClientWith(await Provider.ClientCredentialsTokenAsync("compliance-bot"));
        using var refused = JsonDocument.Parse(await auditor.GetStringAsync("/audit/events?kind=request.refused&limit=1000"));
        Assert.Contains(refused.RootElement.GetProperty("data").EnumerateArray(), e =>
            e.GetProperty("detail").GetString() is { } detail && detail.Contains("client 'other-application'", StringComparison.Ordinal)
            && detail.Contains("Identity:AllowedClients", StringComparison.Ordinal));
    }

    [Fact]
    public async Task No_token_is_401_with_a_bearer_challenge()
    {
        using var client = appliance.ClientWith(null);
        using var response = await Chat(client, "open");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Bearer realm=\"appliance\"", response.Headers.WwwAuthenticate.ToString());
    }

    private async Task<string> Forge(string kind)
    {
        var now = DateTimeOffset.UtcNow;
        var payload = ForgedTokens.Payload(Provider.Authority(), now);
        var key = Provider.SigningKey();
        switch (kind)
        {
            case "expired":
                payload["iat"] = now.AddHours(-2).ToUnixTimeSeconds();
                payload["nbf"] = now.AddHours(-2).ToUnixTimeSeconds();
                payload["exp"] = now.AddMinutes(-5).ToUnixTimeSeconds();
                return ForgedTokens.Sign(payload, key);
            case "not yet valid":
                payload["nbf"] = now.AddMinutes(10).ToUnixTimeSeconds();
                payload["exp"] = now.AddMinutes(20).ToUnixTimeSeconds();
                return ForgedTokens.Sign(payload, key);
            case "other realm":
                return await Provider.ClientCredentialsTokenAsync("report-generator", OidcProvider.OtherRealm);
            case "another key":
                return ForgedTokens.Sign(payload, ForgedTokens.NewKey());
            case "another key under the same kid":
                return ForgedTokens.Sign(payload, ForgedTokens.NewKey(key.Kid));
            case "alg none":
                return ForgedTokens.Unsigned(payload);
            case "HS256 with the public key":
                return ForgedTokens.HmacWithPublicKey(payload, key);
            case "wrong audience":
                payload["aud"] = "account";
                return ForgedTokens.Sign(payload, key);
            case "tampered payload":
                return ForgedTokens.Tampered(await Provider.ClientCredentialsTokenAsync("report-generator"));
            case "no expiry":
                payload.Remove("exp");
                return ForgedTokens.Sign(payload, key);
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }

    internal static Task<HttpResponseMessage> Chat(HttpClient client, string model) =>
        client.PostAsync("/v1/chat/completions", new StringContent(
            $$"""{"model":"{{model}}","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""", Encoding.UTF8, "application/json"));

    internal static async Task<string[]> ModelIds(HttpClient client)
    {
        using var document = JsonDocument.Parse(await client.GetStringAsync("/v1/models"));
        return [.. document.RootElement.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()!).Order(StringComparer.Ordinal)];
    }
}
