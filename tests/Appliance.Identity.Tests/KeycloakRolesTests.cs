namespace Appliance.Identity.Tests;

public sealed class KeycloakRolesTests
{
    [Fact]
    public void Realm_roles_and_the_appliance_client_s_roles_become_role_claims_other_clients_roles_do_not()
    {
        var identity = RecordedTokens.Identity("user-with-client-roles.json");
        var added = KeycloakRoles.AddTo(identity, "appliance-api");

        Assert.Equal(["default-roles-appliance", "offline_access", "uma_authorization", "appliance-user", "appliance-auditor"], added);
        Assert.True(identity.HasClaim(ApplianceClaims.Role, "appliance-auditor"));
        Assert.False(identity.HasClaim(ApplianceClaims.Role, "appliance-admin")); // held for the "reporting" client only
        Assert.False(identity.HasClaim(ApplianceClaims.Role, "manage-account"));
        Assert.Equal("ada", identity.Name);
    }

    [Fact]
    public void A_token_without_resource_access_keeps_its_realm_roles_once_each()
    {
        var identity = RecordedTokens.Identity("user-realm-roles-only.json");
        Assert.Equal(["default-roles-appliance", "appliance-user"], KeycloakRoles.AddTo(identity, "appliance-api"));
    }

    [Fact]
    public void A_service_account_gets_its_client_roles_and_its_name()
    {
        var identity = RecordedTokens.Identity("service-account.json");
        KeycloakRoles.AddTo(identity, "appliance-api");

        Assert.True(identity.HasClaim(ApplianceClaims.Role, "appliance-user"));
        Assert.Equal("service-account-report-generator", identity.Name);
        Assert.Equal("report-generator", identity.FindFirst(ApplianceClaims.Client)?.Value);
    }

    [Fact]
    public void Malformed_access_claims_and_foreign_role_claims_grant_nothing()
    {
        var identity = RecordedTokens.Identity("no-access-claims.json");
        Assert.Empty(KeycloakRoles.AddTo(identity, "appliance-api"));
        Assert.False(new System.Security.Claims.ClaimsPrincipal(identity).IsInRole("appliance-admin")); // a top-level "roles" claim is not Keycloak's and is ignored
    }

    [Fact]
    public void The_client_whose_roles_count_is_configurable()
    {
        var identity = RecordedTokens.Identity("user-with-client-roles.json");
        Assert.Contains("appliance-admin", KeycloakRoles.Read(identity.Claims, "reporting"));
        Assert.DoesNotContain("appliance-auditor", KeycloakRoles.Read(identity.Claims, "reporting"));
    }
}
