namespace Appliance.Host.Identity;

/// <summary>The named authorisation policies; each requires its configured Keycloak role (Identity:Roles).</summary>
public static class AppliancePolicies
{
    public const string Chat = "chat";
    public const string Admin = "admin";
    public const string Audit = "audit";

    /// <summary>Administrators, and team leads (Identity:Roles:TeamLead) for their own teams.</summary>
    public const string Usage = "usage";
}
