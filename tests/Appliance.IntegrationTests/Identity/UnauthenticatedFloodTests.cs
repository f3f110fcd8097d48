using System.Net;
using System.Text.Json;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Identity;

/// <summary>
/// Requests without valid credentials are limited per client address before they reach the audit writer: past the
/// limit they are refused with 429 and sampled into the audit log, not written one by one; valid callers behind the
/// same address are not affected.
/// </summary>
public sealed class UnauthenticatedFloodTests
{
    [Fact]
    public async Task A_flood_without_credentials_is_refused_and_sampled_while_valid_callers_go_on()
    {
        await using var running = await RunningAppliance.StartAsync("--Identity:UnauthenticatedPerMinute=5", "--Appliance:BuiltInEmbeddings=false", "--Logging:LogLevel:Default=None");
        await running.WaitUntilReadyAsync();
        using var anonymous = running.ClientWith(null);
        using var forged = running.ClientWith("not-a-token");

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 150; i++)
        {
            using var response = await (i % 2 == 0 ? anonymous : forged).GetAsync("/v1/models");
            statuses.Add(response.StatusCode);
        }

        Assert.All(statuses.Take(5), s => Assert.Equal(HttpStatusCode.Unauthorized, s));
        // Past the limit, no token at all is refused before authentication, and a forged one after it fails: 429 both.
        Assert.All(statuses.Skip(5), s => Assert.Equal(HttpStatusCode.TooManyRequests, s));
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses); // requests without credentials, refused before authentication
        using (var throttled = await anonymous.GetAsync("/v1/models"))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
            Assert.NotNull(throttled.Headers.RetryAfter);
            Assert.Contains("unauthenticated_rate_limit", await throttled.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // A caller with a valid token from the same address is served.
        Assert.Equal(HttpStatusCode.OK, (await running.Http.GetAsync("/v1/models")).StatusCode);

        // 151 refusals, but only the first five and a sample are in the audit log; the rest are counted.
        using var refused = JsonDocument.Parse(await running.Http.GetStringAsync("/audit/events?kind=request.refused&limit=1000"));
        var entries = refused.RootElement.GetProperty("data").EnumerateArray().ToList();
        Assert.InRange(entries.Count, 6, 8);
        var samples = entries.Select(e => e.GetProperty("detail").GetString() ?? string.Empty).Where(d => d.Contains("unauthenticated flood from", StringComparison.Ordinal)).ToList();
        Assert.Contains(samples, d => d.Contains(": 0 refusals before this one", StringComparison.Ordinal)); // the first of the flood
        Assert.Contains(samples, d => d.Contains(": 100 refusals before this one", StringComparison.Ordinal)); // then one in a hundred
        // The count is exported (its value is not asserted: prometheus-net's registry is shared by every host in this process).
        Assert.Contains("appliance_unauthenticated_throttled_total", await running.Http.GetStringAsync("/metrics"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64")]
    [InlineData("2001:db8:1:2:ffff:1:2:3", "2001:db8:1:2::/64")]
    [InlineData("2001:db8:1:3::1", "2001:db8:1:3::/64")]
    [InlineData("::ffff:192.0.2.7", "192.0.2.7")]
    [InlineData("192.0.2.7", "192.0.2.7")]
    [InlineData("::1", "::1")]
    public void An_IPv6_client_is_counted_by_its_64_network_and_an_IPv4_one_by_its_address(string address, string key) =>
        Assert.Equal(key, Appliance.Host.Identity.UnauthenticatedFloodGuard.ClientKeyOf(IPAddress.Parse(address)));
}
