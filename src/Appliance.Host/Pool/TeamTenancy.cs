using System.Security.Claims;
using Appliance.Api.Models;
using Appliance.Host.Options;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Pool;

/// <summary>The tenant is the caller's team as the audit log records it (Audit:TeamClaim), so fairness, quotas and chargeback agree.</summary>
internal sealed class TeamTenancy(IOptions<AuditOptions> audit) : ITenancy
{
    public string TenantOf(ClaimsPrincipal user) =>
        user.FindFirst(audit.Value.TeamClaim)?.Value is { Length: > 0 } team ? team : "user:" + (user.FindFirst("sub")?.Value ?? "anonymous");
}
