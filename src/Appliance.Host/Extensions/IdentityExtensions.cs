using Appliance.Api.Admin;
using Appliance.Api.Models;
using Appliance.Identity.ApiKeys;
using Microsoft.AspNetCore.Authentication;
using Appliance.Host.Identity;
using Appliance.Host.Options;
using Appliance.Identity;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace Appliance.Host.Extensions;

/// <summary>
/// Keycloak bearer tokens (JwtBearer against the realm's OpenID metadata), the chat / admin / audit policies and
/// per-model access. Without a configured realm, the development identity (local key, Development environment only).
/// </summary>
public static class IdentityExtensions
{
    public static WebApplicationBuilder AddApplianceIdentity(this WebApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(IdentityOptions.Section);
        builder.Services.AddOptions<IdentityOptions>().Bind(section).ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<IdentityOptions>, IdentityOptionsValidator>();
        builder.Services.AddSingleton<BearerEvents>();
        builder.Services.AddSingleton<RealmMetadataWatch>();
        builder.Services.AddHostedService(services => services.GetRequiredService<RealmMetadataWatch>());
        builder.Services.AddSingleton<IModelAccess, ModelAccess>();

        var identity = section.Get<IdentityOptions>() ?? new IdentityOptions();
        var development = string.IsNullOrWhiteSpace(identity.Authority);
        if (development)
        {
            builder.Services.AddSingleton(DevelopmentIdentityFor);
        }

        builder.Services.AddSingleton(ApiKeyStoreFor);
        builder.Services.AddSingleton<ApiKeyOwnerWatch>();
        if (identity.ApiKeys.Enabled)
        {
            builder.Services.AddHostedService<ApiKeyTableOpener>();
            if (identity.ApiKeys.OwnerCheck.ClientId.Length > 0)
            {
                builder.Services.AddHostedService(services => services.GetRequiredService<ApiKeyOwnerWatch>());
            }
        }

        builder.Services.AddSingleton(new UnauthenticatedFloodGuard(identity.UnauthenticatedPerMinute));
        builder.Services.AddSingleton(new ApiKeyIssuing(identity.ApiKeys.Enabled, [identity.Roles.Admin, identity.Roles.Auditor],
            new Appliance.Identity.Clearance(identity.ClassificationLevels, identity.ClearanceClaim, identity.DefaultClearance), identity.ApiKeys.ServiceOwners,
            identity.Roles.User, identity.GroupsClaim,
            identity.ApiKeys.DefaultLifetimeDays, identity.ApiKeys.MaxLifetimeDays));
        var authentication = builder.Services.AddAuthentication(CredentialScheme);
        // One header, two kinds of credential: "Bearer apk_..." is an API key (when enabled), anything else a JWT.
        // The console's pages use its cookie session instead.
        // A batch's request comes from inside the process and runs as the batch's creator (Batches.BatchCaller).
        authentication.AddPolicyScheme(CredentialScheme, "Bearer token or API key", scheme => scheme.ForwardDefaultSelector = http =>
            http.Features.Get<Batches.BatchCaller>() is not null ? Batches.BatchCallerAuthenticationHandler.SchemeName
            : WebConsole.ConsoleSession.Owns(http.Request.Path) ? WebConsole.ConsoleSession.Scheme
            : identity.ApiKeys.Enabled && http.Request.Headers.Authorization.ToString() is var header
            && header.StartsWith("Bearer " + ApiKeySecret.Prefix, StringComparison.OrdinalIgnoreCase)
                ? ApiKeyAuthenticationHandler.SchemeName
                : JwtBearerDefaults.AuthenticationScheme);
        authentication.AddScheme<AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyAuthenticationHandler.SchemeName, null);
        authentication.AddScheme<AuthenticationSchemeOptions, Batches.BatchCallerAuthenticationHandler>(Batches.BatchCallerAuthenticationHandler.SchemeName, null);
        authentication.AddJwtBearer(bearer =>
        {
            bearer.MapInboundClaims = false;
            bearer.IncludeErrorDetails = false;
            bearer.EventsType = typeof(BearerEvents);
            bearer.Audience = identity.Audience;
            bearer.RefreshInterval = identity.JwksRefreshInterval;
            bearer.AutomaticRefreshInterval = identity.MetadataRefreshInterval;
            bearer.TokenValidationParameters = new TokenValidationParameters
            {
                ValidateIssuer = true,
                ValidateAudience = true,
                ValidateLifetime = true,
                RequireExpirationTime = true,
                RequireSignedTokens = true,
                ValidateIssuerSigningKey = true,
                ValidAudience = identity.Audience,
                ValidAlgorithms = [SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSha384, SecurityAlgorithms.RsaSha512,
                    SecurityAlgorithms.RsaSsaPssSha256, SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384],
                ClockSkew = identity.ClockSkew,
                NameClaimType = ApplianceClaims.Username,
                RoleClaimType = ApplianceClaims.Role,
            };
            if (!development)
            {
                bearer.Authority = identity.Authority;
                bearer.RequireHttpsMetadata = identity.RequireHttpsMetadata;
            }
        });
        // After JwtBearer's own post-configuration has created the configuration manager: a key the realm stopped
        // publishing (rotated out, or removed after a compromise) must stop working at the next key refresh, not stay
        // valid for an hour as part of a cached "last known good" configuration.
        builder.Services.PostConfigure<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme, bearer =>
        {
            if (bearer.ConfigurationManager is BaseConfigurationManager manager)
            {
                manager.UseLastKnownGoodConfiguration = false;
            }
        });
        if (development)
        {
            builder.Services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme).Configure<DevelopmentIdentity>((bearer, local) =>
            {
                bearer.TokenValidationParameters.ValidIssuer = DevelopmentIdentity.Issuer;
                bearer.TokenValidationParameters.IssuerSigningKey = local.SigningKey;
            });
        }

        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(AppliancePolicies.Chat, policy => policy.RequireAuthenticatedUser().RequireRole(identity.Roles.User))
            .AddPolicy(AppliancePolicies.Admin, policy => policy.RequireAuthenticatedUser().RequireRole(identity.Roles.Admin))
            .AddPolicy(AppliancePolicies.Audit, policy => policy.RequireAuthenticatedUser().RequireRole(identity.Roles.Auditor))
            .AddPolicy(AppliancePolicies.Usage, policy => policy.RequireAuthenticatedUser().RequireRole(
                identity.Roles.TeamLead.Length > 0 ? [identity.Roles.Admin, identity.Roles.TeamLead] : [identity.Roles.Admin]))
            // Anything mapped without a policy of its own still needs a valid token; /health opts out explicitly.
            .SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());
        return builder;
    }

    /// <summary>Authentication on every request, and the identity in use announced once at start.</summary>
    /// <summary>
    /// Anthropic's clients send their key in x-api-key rather than as a bearer token: on the Messages API it is taken
    /// as the bearer credential (an appliance API key or an access token), before the audit and the flood guard look.
    /// </summary>
    public static WebApplication UseAnthropicKeyHeader(this WebApplication app)
    {
        app.Use((http, next) =>
        {
            if (http.Request.Path.StartsWithSegments("/v1/messages") && !http.Request.Headers.ContainsKey("Authorization")
                && http.Request.Headers.TryGetValue("x-api-key", out var key) && key.Count == 1 && !string.IsNullOrEmpty(key[0]))
            {
                http.Request.Headers.Authorization = "Bearer " + key[0];
            }

            return next(http);
        });
        return app;
    }

    public static WebApplication UseApplianceIdentity(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Appliance.Identity");
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var identity = app.Services.GetRequiredService<IOptions<IdentityOptions>>().Value;
            if (app.Services.GetService<DevelopmentIdentity>() is { } local)
            {
                IdentityLog.DevelopmentIdentityInUse(logger, Path.GetFullPath(local.KeyPath),
                    Path.GetFullPath(app.Services.GetRequiredService<IOptions<ApplianceOptions>>().Value.DataFolder));
            }
            else
            {
                IdentityLog.KeycloakInUse(logger, identity.Authority, identity.Audience, identity.RoleClientId);
            }
        });
        return app;
    }

    private const string CredentialScheme = "BearerOrApiKey";

    /// <summary>
    /// The key table beside the audit log: the cluster's PostgreSQL when the audit store is PostgreSQL (so a key works,
    /// and is revoked, on every node), else a SQLite file in the identity folder. An earlier version's JSON file is imported.
    /// </summary>
    private static ApiKeyStore ApiKeyStoreFor(IServiceProvider services)
    {
        var audit = services.GetRequiredService<IOptions<AuditOptions>>().Value;
        var folder = IdentityFolder(services);
        ApiKeyTable table = audit.Store == "postgresql"
            ? new PostgresApiKeyTable(audit.PostgresConnectionString)
            : new SqliteApiKeyTable(Path.Combine(folder, "api-keys.db"));
        var store = new ApiKeyStore(table, services.GetRequiredService<IOptions<IdentityOptions>>().Value.ApiKeys.RefreshInterval,
            services.GetRequiredService<TimeProvider>(), services.GetRequiredService<ILoggerFactory>().CreateLogger("Appliance.Identity.ApiKeys"));
        store.ImportLegacyFile(folder);
        return store;
    }

    private static DevelopmentIdentity DevelopmentIdentityFor(IServiceProvider services) => DevelopmentIdentity.LoadOrCreate(IdentityFolder(services));

    private static string IdentityFolder(IServiceProvider services) =>
        Path.Combine(services.GetRequiredService<IOptions<ApplianceOptions>>().Value.DataFolder, "identity");
}
