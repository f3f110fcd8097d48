using System.Security.Claims;
using Appliance.Host.Options;
using Appliance.WebConsole;
using Microsoft.Extensions.Options;

namespace Appliance.Host.WebConsole;

/// <summary>Administrators see all usage; anyone else on the usage page (a team lead) sees the teams they belong to (Audit:TeamClaim).</summary>
internal sealed class TeamUsageScope(IOptions<IdentityOptions> identity, IOptions<AuditOptions> audit) : IUsageScope
{
    public IReadOnlyList<string>? TeamsOf(ClaimsPrincipal user) => user.IsInRole(identity.Value.Roles.Admin)
        ? null
        : [.. user.FindAll(audit.Value.TeamClaim).Select(c => c.Value).Where(v => v.Length > 0).Distinct(StringComparer.Ordinal)];
}
