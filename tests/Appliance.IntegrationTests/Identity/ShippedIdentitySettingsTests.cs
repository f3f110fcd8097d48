using System.Text.Json;
using Appliance.Host.Options;
using Appliance.Host.Quotas;
using Appliance.Tests.Common;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace Appliance.IntegrationTests.Identity;

/// <summary>What ships in appliance/ (the Keycloak realm export, the production settings) agrees with the code.</summary>
public sealed class ShippedIdentitySettingsTests
{
    private static readonly string Appliance = Path.Combine(RepositoryPaths.Root, "appliance");

    [Fact]
    public void The_realm_export_has_the_roles_the_audience_mapper_and_the_clients_the_appliance_expects()
    {
        using var realm = JsonDocument.Parse(File.ReadAllText(Path.Combine(Appliance, "keycloak", "realm-appliance.json")));
        var root = realm.RootElement;
        var defaults = new IdentityOptions();
        var roles = root.GetProperty("roles").GetProperty("realm").EnumerateArray().Select(r => r.GetProperty("name").GetString()).ToList();
        Assert.Equal([defaults.Roles.User, defaults.Roles.Admin, defaults.Roles.Auditor], roles);

        var clients = root.GetProperty("clients").EnumerateArray().ToDictionary(c => c.GetProperty("clientId").GetString()!);
        Assert.True(clients[defaults.Audience].GetProperty("bearerOnly").GetBoolean());

        var console = clients["appliance-console"];
        Assert.True(console.GetProperty("publicClient").GetBoolean());
        Assert.Equal("S256", console.GetProperty("attributes").GetProperty("pkce.code.challenge.method").GetString());
        Assert.True(MapsAudience(console, defaults.Audience));
        Assert.Contains(console.GetProperty("protocolMappers").EnumerateArray(), m => m.GetProperty("config").TryGetProperty("claim.name", out var c) && c.GetString() == defaults.ClearanceClaim);
        Assert.Contains(console.GetProperty("protocolMappers").EnumerateArray(), m => m.GetProperty("config").TryGetProperty("claim.name", out var c) && c.GetString() == defaults.GroupsClaim);

        var service = clients["report-generator"];
        Assert.True(service.GetProperty("serviceAccountsEnabled").GetBoolean());
        Assert.True(MapsAudience(service, defaults.Audience));
        var serviceUser = root.GetProperty("users").EnumerateArray().Single(u => u.GetProperty("serviceAccountClientId").GetString() == "report-generator");
        Assert.Contains(defaults.Roles.User, serviceUser.GetProperty("realmRoles").EnumerateArray().Select(r => r.GetString()));

        // The API key owner check's client: a service account that may read users, and nothing of the appliance.
        var directory = clients["appliance-directory"];
        Assert.True(directory.GetProperty("serviceAccountsEnabled").GetBoolean());
        Assert.False(directory.GetProperty("publicClient").GetBoolean());
        Assert.False(directory.TryGetProperty("protocolMappers", out _));
        var directoryUser = root.GetProperty("users").EnumerateArray().Single(u => u.GetProperty("serviceAccountClientId").GetString() == "appliance-directory");
        Assert.Equal(["view-users"], directoryUser.GetProperty("clientRoles").GetProperty("realm-management").EnumerateArray().Select(r => r.GetString()));
        Assert.False(directoryUser.TryGetProperty("realmRoles", out _));
    }

    [Fact]
    public void The_production_settings_name_a_realm_and_pass_validation_in_production()
    {
        var configuration = new ConfigurationBuilder().AddJsonFile(Path.Combine(Appliance, "appsettings.Production.json")).Build();
        var identity = configuration.GetSection(IdentityOptions.Section).Get<IdentityOptions>()!;
        var validator = new IdentityOptionsValidator(new ProductionEnvironment(), configuration);
        var result = validator.Validate(null, identity);
        Assert.True(result.Succeeded, result.FailureMessage);
        Assert.StartsWith("https://", identity.Authority, StringComparison.Ordinal);
        Assert.True(identity.RequireHttpsMetadata);

        // The example model reads as written (every key a setting, every value of its type, its label a level); only
        // its folder is missing here.
        var models = configuration.Get<ModelsOptions>()!;
        var modelFailures = new ModelsOptionsValidator(configuration, Microsoft.Extensions.Options.Options.Create(identity)).Validate(null, models).Failures ?? [];
        Assert.Single(models.Models);
        Assert.All(modelFailures, failure => Assert.Contains(":Path: folder", failure, StringComparison.Ordinal));
    }

    [Fact]
    public void The_production_audit_settings_bind_to_the_defaults_they_document()
    {
        var configuration = new ConfigurationBuilder().AddJsonFile(Path.Combine(Appliance, "appsettings.Production.json")).Build();
        var audit = configuration.GetSection(AuditOptions.Section).Get<AuditOptions>()!;
        Assert.True(audit.Enabled);
        Assert.Null(audit.MaxSizeBytes);
        Assert.Equal(new AuditOptions() with { SqlitePath = audit.SqlitePath }, audit);
    }

    [Fact]
    public void The_production_pool_and_quota_settings_bind_and_pass_validation()
    {
        var configuration = new ConfigurationBuilder().AddJsonFile(Path.Combine(Appliance, "appsettings.Production.json")).Build();
        var pool = configuration.GetSection(PoolOptions.Section).Get<PoolOptions>()!;
        var quotas = configuration.GetSection(QuotaOptions.Section).Get<QuotaOptions>()!;

        Assert.Empty(pool.Validate());
        Assert.Equal(2, pool.TenantWeights["/research"]);
        Assert.Empty(quotas.Validate());
        Assert.Equal(8, quotas.User.ConcurrentStreams);
        Assert.Equal(50000000, quotas.Teams["/research"].Over(quotas.Team).TokensPerDay);
        Assert.Equal(100000, quotas.Users["service-account-report-generator"].Over(quotas.User).TokensPerMinute); // unset: the default's

        // Every override names a user of the shipped realm (an override nobody's name matches silently applies to nobody).
        using var realm = JsonDocument.Parse(File.ReadAllText(Path.Combine(Appliance, "keycloak", "realm-appliance.json")));
        var usernames = realm.RootElement.GetProperty("users").EnumerateArray().Select(u => u.GetProperty("username").GetString()).ToHashSet();
        Assert.All(quotas.Users.Keys, name => Assert.Contains(name, usernames));
        var models = configuration.Get<ModelsOptions>()!;
        Assert.NotEmpty(models.Models);
        Assert.All(models.Models.Values, m => Assert.True(m.Replicas >= 1 && m.MemoryBytes > 0));
    }

    private static bool MapsAudience(JsonElement client, string audience) =>
        client.GetProperty("protocolMappers").EnumerateArray().Any(m =>
            m.GetProperty("protocolMapper").GetString() == "oidc-audience-mapper"
            && m.GetProperty("config").GetProperty("included.client.audience").GetString() == audience
            && m.GetProperty("config").GetProperty("access.token.claim").GetString() == "true");

    private sealed class ProductionEnvironment : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = Environments.Production;

        public string ApplicationName { get; set; } = "Appliance.Host";

        public string ContentRootPath { get; set; } = RepositoryPaths.Root;

        public Microsoft.Extensions.FileProviders.IFileProvider ContentRootFileProvider { get; set; } = new Microsoft.Extensions.FileProviders.NullFileProvider();
    }
}
