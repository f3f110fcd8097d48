using System.Security.Claims;
using Appliance.Host.Options;
using Appliance.WebConsole;
using Microsoft.Extensions.Options;

namespace Appliance.Host.WebConsole;

/// <summary>Administrators see all usage; anyone else on the usage page (a team lead) sees the teams they belong to (Audit:TeamClaim, Audit:TeamPrefix).</summary>
internal sealed class TeamUsageScope(IOptions<IdentityOptions> identity, Audit.CallerTeam teams) : IUsageScope
{
    public IReadOnlyList<string>? TeamsOf(ClaimsPrincipal user) => user.IsInRole(identity.Value.Roles.Admin) ? null : teams.All(user);
}
