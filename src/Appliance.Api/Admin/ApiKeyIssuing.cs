using Appliance.Identity;

namespace Appliance.Api.Admin;

/// <summary>What administrators may issue as API keys; the host fills it from its identity settings.</summary>
/// <param name="ForbiddenRoles">Roles no key may carry (administration and audit need a Keycloak sign-in).</param>
/// <param name="Clearance">The classification levels, to keep a key's clearance at or below its issuer's.</param>
/// <param name="UserRole">The chat role, which any administrator may give; other roles only if the issuer holds them.</param>
/// <param name="GroupsClaim">The token claim holding the issuer's groups; a key's groups must be among them.</param>
/// <param name="ServiceOwners">
/// Service accounts keys may be issued to besides the issuing administrator. A key acts as its owner in the audit log,
/// so an administrator cannot mint one that acts as a colleague.
/// </param>
public sealed record ApiKeyIssuing(
    bool Enabled,
    IReadOnlyList<string> ForbiddenRoles,
    Clearance Clearance,
    IReadOnlyList<string> ServiceOwners,
    string UserRole,
    string GroupsClaim,
    int DefaultLifetimeDays,
    int MaxLifetimeDays)
{
    public IReadOnlyList<string> ClearanceLevels => Clearance.Levels;
}
