using System.Security.Claims;
using System.Text.Json;

namespace Appliance.Identity;

/// <summary>
/// Keycloak's roles as the appliance's role claims: the realm roles ("realm_access": {"roles": [...]}) and the roles
/// of the appliance's own client ("resource_access": {"appliance-api": {"roles": [...]}}). Roles other clients hold
/// mean something to those clients only, so they are not taken.
/// </summary>
public static class KeycloakRoles
{
    /// <summary>The roles a token's claims carry, realm roles first, without duplicates.</summary>
    public static IReadOnlyList<string> Read(IEnumerable<Claim> claims, string clientId)
    {
        var roles = new List<string>();
        foreach (var claim in claims)
        {
            if (claim.Type == ApplianceClaims.RealmAccess)
            {
                roles.AddRange(RolesIn(claim.Value, null));
            }
            else if (claim.Type == ApplianceClaims.ResourceAccess)
            {
                roles.AddRange(RolesIn(claim.Value, clientId));
            }
        }

        return [.. roles.Distinct(StringComparer.Ordinal)];
    }

    /// <summary>Adds the role claims to the identity; returns the roles added.</summary>
    public static IReadOnlyList<string> AddTo(ClaimsIdentity identity, string clientId)
    {
        var roles = Read(identity.Claims, clientId);
        foreach (var role in roles)
        {
            identity.AddClaim(new Claim(ApplianceClaims.Role, role));
        }

        return roles;
    }

    private static IEnumerable<string> RolesIn(string json, string? clientId)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException)
        {
            return []; // a malformed claim grants nothing
        }

        using (document)
        {
            var holder = document.RootElement;
            if (clientId is not null && !(holder.ValueKind == JsonValueKind.Object && holder.TryGetProperty(clientId, out holder)))
            {
                return [];
            }

            return holder.ValueKind == JsonValueKind.Object && holder.TryGetProperty("roles", out var roles) && roles.ValueKind == JsonValueKind.Array
                ? [.. roles.EnumerateArray().Where(r => r.ValueKind == JsonValueKind.String).Select(r => r.GetString()!)]
                : [];
        }
    }
}
