using System.Net;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using Appliance.Host.Options;
using Appliance.Host.WebConsole;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace Appliance.IntegrationTests.Identity;

/// <summary>
/// The console keeps each session's newest tokens; sessions whose cookie can no longer be alive are forgotten. The realm's
/// token endpoint is the one fake here: this class alone is under test.
/// </summary>
public sealed class ConsoleTokenRefresherTests
{
    private static readonly TimeSpan SessionLifetime = TimeSpan.FromHours(8);

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 9, 0, 0, TimeSpan.Zero));

    [Fact]
    public async Task Sessions_idle_for_a_whole_session_lifetime_are_forgotten_and_active_ones_kept()
    {
        var refresher = Build(out var realm);

        for (var i = 0; i < 50; i++)
        {
            await refresher.AccessTokenAsync(Session($"refresh-{i}"), CancellationToken.None);
        }

        Assert.Equal(50, realm.Refreshes); // every session's token was about to expire
        Assert.Equal(50, refresher.TrackedSessions);

        _time.Advance(SessionLifetime - TimeSpan.FromMinutes(5));
        await refresher.AccessTokenAsync(Session("refresh-7"), CancellationToken.None); // still in use
        Assert.Equal(50, refresher.TrackedSessions); // nobody idle for a whole lifetime yet

        _time.Advance(TimeSpan.FromMinutes(10));
        await refresher.AccessTokenAsync(Session("refresh-new"), CancellationToken.None);

        Assert.Equal(2, refresher.TrackedSessions); // the one kept alive and the new one
    }

    [Fact]
    public async Task A_kept_session_gets_its_newest_token_without_asking_the_realm_again()
    {
        var refresher = Build(out var realm);

        var first = await refresher.AccessTokenAsync(Session("refresh-a"), CancellationToken.None);
        var second = await refresher.AccessTokenAsync(Session("refresh-a"), CancellationToken.None);

        Assert.Equal(1, realm.Refreshes);
        Assert.Equal(first, second);
        Assert.True(ConsoleSession.ExpiresAt(second!) > _time.GetUtcNow().AddMinutes(4));
    }

    private ConsoleTokenRefresher Build(out FakeRealm realm)
    {
        var tokenRealm = realm = new FakeRealm(this);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(_time);
        services.AddSingleton(Microsoft.Extensions.Options.Options.Create(new IdentityOptions { ConsoleSessionLifetime = SessionLifetime }));
        services.AddOptions<OpenIdConnectOptions>(ConsoleSession.OpenIdScheme).Configure(options =>
        {
            options.ClientId = "appliance-console";
            options.ConfigurationManager = new StaticConfigurationManager<OpenIdConnectConfiguration>(
                new OpenIdConnectConfiguration { TokenEndpoint = "http://realm.test/realms/appliance/protocol/openid-connect/token" });
        });
        services.AddHttpClient(nameof(ConsoleTokenRefresher)).ConfigurePrimaryHttpMessageHandler(() => tokenRealm);
        services.AddSingleton<ConsoleTokenRefresher>();
        return services.BuildServiceProvider().GetRequiredService<ConsoleTokenRefresher>();
    }

    private ClaimsPrincipal Session(string refreshToken) =>
        ConsoleSession.FromAccessToken(Token(_time.GetUtcNow().AddSeconds(10)), "appliance", refreshToken);

    private static string Token(DateTimeOffset expires) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Subject = new ClaimsIdentity([new Claim("sub", Guid.NewGuid().ToString())]),
        NotBefore = expires.UtcDateTime.AddMinutes(-10),
        IssuedAt = expires.UtcDateTime.AddMinutes(-10),
        Expires = expires.UtcDateTime,
    });

    private sealed class FakeRealm(ConsoleTokenRefresherTests test) : HttpMessageHandler
    {
        public int Refreshes;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Refreshes);
            var body = JsonSerializer.Serialize(new Dictionary<string, string>
            {
                ["access_token"] = Token(test._time.GetUtcNow().AddMinutes(5)),
                ["refresh_token"] = $"rotated-{Guid.NewGuid()}",
            });
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(body, Encoding.UTF8, "application/json") });
        }
    }
}
