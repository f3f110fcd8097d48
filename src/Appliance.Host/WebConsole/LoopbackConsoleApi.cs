using System.Net.Http.Headers;
using System.Security.Claims;
using Appliance.WebConsole;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Appliance.Host.WebConsole;

/// <summary>
/// The playground is a client of the API like any other (same authentication, audit and quotas): it calls this node's
/// first listener on loopback with the person's own access token.
/// </summary>
internal sealed class LoopbackConsoleApi(IServer server, IHttpClientFactory clients, ConsoleTokenRefresher tokens) : IConsoleApi
{
    public async Task<HttpClient> CreateAsync(ClaimsPrincipal user, CancellationToken cancellationToken = default)
    {
        var client = clients.CreateClient(nameof(LoopbackConsoleApi));
        client.BaseAddress = Loopback();
        client.Timeout = TimeSpan.FromMinutes(10);
        if (await tokens.AccessTokenAsync(user, cancellationToken) is { } token)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        return client;
    }

    private Uri Loopback()
    {
        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("the server has no listening address yet");
        var uri = new UriBuilder(address.Replace("://+", "://127.0.0.1", StringComparison.Ordinal).Replace("://*", "://127.0.0.1", StringComparison.Ordinal));
        if (uri.Host is "0.0.0.0" or "[::]" or "::" or "localhost")
        {
            uri.Host = "127.0.0.1";
        }

        uri.Path = "/";
        return uri.Uri;
    }
}
