using System.Security.Claims;

namespace Appliance.WebConsole;

/// <summary>What the console keeps in a person's session besides their identity.</summary>
public static class ConsoleClaims
{
    /// <summary>The person's access token for the appliance API; the playground calls the API with it, as any client would.</summary>
    public const string ApiToken = "appliance/console_api_token";

    public static string? ApiTokenOf(ClaimsPrincipal user) => user.FindFirst(ApiToken)?.Value;
}

/// <summary>An HTTP client for the appliance's own API on its loopback listener (the host provides it).</summary>
public interface IConsoleApi
{
    /// <summary>A client carrying the person's access token (refreshed first when it is about to expire).</summary>
    Task<HttpClient> CreateAsync(ClaimsPrincipal user, CancellationToken cancellationToken = default);
}
