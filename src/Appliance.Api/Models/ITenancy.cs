using System.Security.Claims;

namespace Appliance.Api.Models;

/// <summary>Which tenant a caller's requests are queued and charged under (fair queueing, team quotas).</summary>
public interface ITenancy
{
    /// <summary>The caller's team (the configured claim, e.g. a Keycloak group), else "user:" and the subject.</summary>
    string TenantOf(ClaimsPrincipal user);
}

/// <summary>The tenant a request is charged to for fair queueing: the host's ITenancy, or one shared tenant without it.</summary>
public static class Tenancy
{
    public static string Of(Microsoft.AspNetCore.Http.HttpContext http) =>
        (http.RequestServices.GetService(typeof(ITenancy)) as ITenancy)?.TenantOf(http.User) ?? string.Empty;
}
