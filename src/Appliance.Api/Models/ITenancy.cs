using System.Security.Claims;

namespace Appliance.Api.Models;

/// <summary>Which tenant a caller's requests are queued and charged under (fair queueing, team quotas).</summary>
public interface ITenancy
{
    /// <summary>The caller's team (the configured claim, e.g. a Keycloak group), else "user:" and the subject.</summary>
    string TenantOf(ClaimsPrincipal user);
}
