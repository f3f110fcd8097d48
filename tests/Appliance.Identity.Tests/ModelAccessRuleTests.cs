using System.Security.Claims;

namespace Appliance.Identity.Tests;

public sealed class ModelAccessRuleTests
{
    private static readonly Clearance Levels = new(["public", "internal", "confidential", "restricted"], "clearance", "internal");

    [Theory]
    [InlineData("public", ModelAccessDenial.None)]
    [InlineData("confidential", ModelAccessDenial.None)] // the recorded user is cleared for confidential
    [InlineData("restricted", ModelAccessDenial.ClearanceTooLow)]
    public void A_model_s_label_is_compared_with_the_caller_s_clearance(string label, ModelAccessDenial expected) =>
        Assert.Equal(expected, new ModelAccessRule([], [], label).Check(User("user-with-client-roles.json"), Levels, "groups"));

    [Fact]
    public void A_caller_without_a_clearance_claim_has_the_default_clearance()
    {
        var grace = User("user-realm-roles-only.json");
        Assert.Equal(ModelAccessDenial.None, new ModelAccessRule([], [], "internal").Check(grace, Levels, "groups"));
        Assert.Equal(ModelAccessDenial.ClearanceTooLow, new ModelAccessRule([], [], "confidential").Check(grace, Levels, "groups"));
    }

    [Fact]
    public void A_refusal_says_where_the_caller_s_clearance_came_from()
    {
        // A realm whose mapper writes another claim name shows as everyone at the default: the refusal must say so.
        Assert.Equal("internal (Identity:DefaultClearance: the token carries no 'clearance' claim)", Levels.DescribeCaller(User("user-realm-roles-only.json")));
        Assert.Equal("confidential", Levels.DescribeCaller(User("user-with-client-roles.json")));
        var typo = new ClaimsPrincipal(new ClaimsIdentity([new Claim("clearance", "restriced")], "Bearer"));
        Assert.Equal("public (its 'clearance' claim names 'restriced', which is no level: counted as the lowest)", Levels.DescribeCaller(typo));
    }

    [Fact]
    public void An_unknown_clearance_value_counts_as_the_lowest_level_not_the_default()
    {
        var caller = new ClaimsPrincipal(new ClaimsIdentity([new Claim("clearance", "top-secret-ish")], "Bearer"));
        Assert.Equal(ModelAccessDenial.ClearanceTooLow, new ModelAccessRule([], [], "internal").Check(caller, Levels, "groups"));
        Assert.Equal(ModelAccessDenial.None, new ModelAccessRule([], [], "public").Check(caller, Levels, "groups"));
    }

    [Theory]
    [InlineData(new[] { "appliance-auditor" }, new string[0], ModelAccessDenial.None)]
    [InlineData(new[] { "finance" }, new string[0], ModelAccessDenial.NotInAllowedRolesOrGroups)]
    [InlineData(new string[0], new[] { "research/nlp" }, ModelAccessDenial.None)] // group paths match with or without the slash
    [InlineData(new string[0], new[] { "/staff" }, ModelAccessDenial.None)]
    [InlineData(new string[0], new[] { "/research" }, ModelAccessDenial.NotInAllowedRolesOrGroups)] // a parent group is another group
    [InlineData(new[] { "finance" }, new[] { "/staff" }, ModelAccessDenial.None)] // either list admits
    public void Listed_roles_or_groups_admit_a_caller(string[] roles, string[] groups, ModelAccessDenial expected) =>
        Assert.Equal(expected, new ModelAccessRule(roles, groups, "public").Check(User("user-with-client-roles.json"), Levels, "groups"));

    [Fact]
    public void A_model_label_that_is_no_level_admits_nobody()
    {
        // Validation refuses such labels; should one reach a rule anyway (levels changed under a running node), it
        // must close the model, not open it to every clearance.
        var restricted = new ClaimsPrincipal(new ClaimsIdentity([new Claim("clearance", "restricted")], "Bearer"));
        Assert.Equal(ModelAccessDenial.ClearanceTooLow, new ModelAccessRule([], [], "cosmic").Check(restricted, Levels, "groups"));
        Assert.False(Levels.Permits(restricted, "cosmic"));
    }

    [Fact]
    public void A_default_clearance_outside_the_levels_is_refused() =>
        Assert.Throws<ArgumentException>(() => new Clearance(["public", "internal"], "clearance", "secret"));

    private static ClaimsPrincipal User(string payload)
    {
        var identity = RecordedTokens.Identity(payload);
        KeycloakRoles.AddTo(identity, "appliance-api");
        return new ClaimsPrincipal(identity);
    }
}
