using System.Security.Claims;

namespace Appliance.Identity;

/// <summary>Why a caller may not use a model; recorded, never told in detail to the caller.</summary>
public enum ModelAccessDenial
{
    None,
    NotInAllowedRolesOrGroups,
    ClearanceTooLow,
}

/// <summary>
/// Who may use one model: callers holding one of <see cref="Roles"/> or belonging to one of <see cref="Groups"/> (both
/// empty: every caller allowed to chat), and only with a clearance at or above <see cref="Classification"/>.
/// </summary>
public sealed record ModelAccessRule(IReadOnlyList<string> Roles, IReadOnlyList<string> Groups, string Classification)
{
    public ModelAccessDenial Check(ClaimsPrincipal caller, Clearance clearance, string groupsClaim)
    {
        var listed = Roles.Count > 0 || Groups.Count > 0;
        if (listed && !Roles.Any(role => caller.HasClaim(ApplianceClaims.Role, role)) && !Groups.Any(group => InGroup(caller, groupsClaim, group)))
        {
            return ModelAccessDenial.NotInAllowedRolesOrGroups;
        }

        return clearance.Permits(caller, Classification) ? ModelAccessDenial.None : ModelAccessDenial.ClearanceTooLow;
    }

    /// <summary>Keycloak writes group paths ("/research/nlp") or names depending on the mapper: both forms match.</summary>
    private static bool InGroup(ClaimsPrincipal caller, string groupsClaim, string group)
    {
        var wanted = group.TrimStart('/');
        return caller.FindAll(groupsClaim).Any(claim => string.Equals(claim.Value.TrimStart('/'), wanted, StringComparison.Ordinal));
    }
}
