namespace Appliance.Identity;

/// <summary>
/// Claim types the appliance itself adds. Roles get a type of their own so that only the Keycloak mapping grants them:
/// a token that carries a top-level "roles" or "role" claim of some other issuer's convention grants nothing.
/// </summary>
public static class ApplianceClaims
{
    public const string Role = "appliance/role";

    /// <summary>The Keycloak claims read by the mapping and recorded by the audit log.</summary>
    public const string Username = "preferred_username";
    public const string Subject = "sub";
    public const string Client = "azp";
    public const string RealmAccess = "realm_access";
    public const string ResourceAccess = "resource_access";
}
