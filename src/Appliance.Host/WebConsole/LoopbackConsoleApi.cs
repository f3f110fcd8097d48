using System.Net.Http.Headers;
using System.Security.Claims;
using Appliance.WebConsole;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Appliance.Host.WebConsole;

/// <summary>
/// The playground is a client of the API like any other (same authentication, audit and quotas): it calls this node's
/// API on loopback with the person's own access token. A plain-HTTP listener is preferred (in a cluster the node's HTTPS
/// listener has the cluster CA's certificate and may require a client certificate), and the management listener,
/// which serves only /metrics, is never used.
/// </summary>
internal sealed class LoopbackConsoleApi(IServer server, IHttpClientFactory clients, ConsoleTokenRefresher tokens, IConfiguration configuration) : IConsoleApi
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
        var management = Uri.TryCreate(configuration["Metrics:ManagementUrl"], UriKind.Absolute, out var managementUri) ? managementUri.Port : -1;
        var address = (server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [])
            .Where(a => !Uri.TryCreate(a.Replace("://+", "://localhost", StringComparison.Ordinal).Replace("://*", "://localhost", StringComparison.Ordinal), UriKind.Absolute, out var u) || u.Port != management)
            .OrderBy(a => a.StartsWith("http://", StringComparison.Ordinal) ? 0 : 1)
            .FirstOrDefault()
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
