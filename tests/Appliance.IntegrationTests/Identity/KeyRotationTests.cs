using System.Diagnostics;
using System.Net;

namespace Appliance.IntegrationTests.Identity;

/// <summary>A realm key rotated in the provider is picked up by the running host, without a restart.</summary>
[Collection(KeycloakApplianceCollection.Name)]
public sealed class KeyRotationTests(KeycloakAppliance appliance)
{
    [Fact]
    public async Task Tokens_signed_with_a_rotated_key_are_accepted_after_the_next_key_refresh()
    {
        var provider = appliance.Provider;
        var before = await provider.ClientCredentialsTokenAsync("report-generator");
        using (var old = appliance.ClientWith(before))
        {
            Assert.Equal(HttpStatusCode.OK, (await KeycloakTokenTests.Chat(old, "open")).StatusCode);
        }

        await provider.RotateKeyAsync();
        using var rotated = appliance.ClientWith(await provider.ClientCredentialsTokenAsync("report-generator"));

        // The first call with the unknown kid triggers a refresh of the realm's keys (at most once per
        // Identity:JwksRefreshInterval, one second here); within a few seconds the new key must be trusted.
        var clock = Stopwatch.StartNew();
        HttpStatusCode status;
        do
        {
            status = (await KeycloakTokenTests.Chat(rotated, "open")).StatusCode;
            if (status != HttpStatusCode.OK)
            {
                await Task.Delay(250);
            }
        }
        while (status != HttpStatusCode.OK && clock.Elapsed < TimeSpan.FromSeconds(15));

        Assert.Equal(HttpStatusCode.OK, status);

        // The old key is gone from the realm, so its tokens no longer pass (no "last known good" key set lingers).
        using var stale = appliance.ClientWith(before);
        Assert.Equal(HttpStatusCode.Unauthorized, (await KeycloakTokenTests.Chat(stale, "open")).StatusCode);
    }
}
