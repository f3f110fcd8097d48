using System.Security.Claims;
using Appliance.Api.Models;

namespace Appliance.Host.Pool;

/// <summary>The tenant is the caller's team as the audit log records it (Audit:TeamClaim), so fairness, quotas and chargeback agree.</summary>
internal sealed class TeamTenancy(Audit.CallerTeam teams) : ITenancy
{
    public string TenantOf(ClaimsPrincipal user) =>
        teams.Of(user) is { } team ? team : "user:" + (user.FindFirst("sub")?.Value ?? "anonymous");
}
