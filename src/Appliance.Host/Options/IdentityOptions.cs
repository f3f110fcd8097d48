namespace Appliance.Host.Options;

/// <summary>Who may call the appliance (configuration section "Identity"): the Keycloak realm, roles and data classification.</summary>
public sealed record IdentityOptions
{
    public const string Section = "Identity";

    /// <summary>
    /// The Keycloak realm, e.g. https://kc.example/realms/appliance. Empty: the development identity, which only the
    /// Development environment accepts (and only on loopback).
    /// </summary>
    public string Authority { get; init; } = string.Empty;

    /// <summary>The audience access tokens must carry (Keycloak adds it with an audience mapper).</summary>
    public string Audience { get; init; } = "appliance-api";

    /// <summary>
    /// The Keycloak clients (a token's <c>azp</c>) whose tokens the appliance accepts; empty: any client whose tokens
    /// carry the audience. Where a realm adds the audience to many clients (a default client scope), this keeps a token
    /// some other application obtained for its own users from working here. The console's client is always accepted.
    /// </summary>
    public IReadOnlyList<string> AllowedClients { get; init; } = [];

    /// <summary>Whether a token issued to <paramref name="client"/> (its azp; null when it has none) may be used here.</summary>
    public bool Accepts(string? client) =>
        AllowedClients.Count == 0 || (client is not null && (client == ConsoleClientId || AllowedClients.Contains(client, StringComparer.Ordinal)));

    /// <summary>The client whose resource_access roles count as the appliance's roles; empty means the audience.</summary>
    public string ClientId { get; init; } = string.Empty;

    /// <summary>Only for a loopback Keycloak during development: production metadata must come over HTTPS.</summary>
    public bool RequireHttpsMetadata { get; init; } = true;

    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How soon a token signed with an unknown key makes the appliance fetch the realm's keys again, so that a rotated
    /// key is picked up without a restart.
    /// </summary>
    public TimeSpan JwksRefreshInterval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>How often the realm's metadata and keys are refreshed anyway.</summary>
    public TimeSpan MetadataRefreshInterval { get; init; } = TimeSpan.FromHours(1);

    public RoleNames Roles { get; init; } = new();

    /// <summary>The token claim that carries the caller's clearance (a Keycloak user attribute mapped into the token).</summary>
    public string ClearanceClaim { get; init; } = "clearance";

    /// <summary>
    /// Failed authentications one client address may cause per minute before its requests without credentials are
    /// refused with 429 and its refusals are sampled into the audit log instead of written one by one. Raise it where
    /// many people share one address (a NAT without trusted proxy headers); 0 turns the limit off.
    /// </summary>
    public int UnauthenticatedPerMinute { get; init; } = 120;

    /// <summary>Classification levels, lowest first.</summary>
    public IReadOnlyList<string> ClassificationLevels { get; init; } = ["public", "internal", "confidential", "restricted"];

    /// <summary>The clearance of a caller whose token has no clearance claim.</summary>
    public string DefaultClearance { get; init; } = "internal";

    /// <summary>The label of a model that declares none.</summary>
    public string DefaultClassification { get; init; } = "internal";

    /// <summary>The claim holding the caller's Keycloak groups (group membership mapper).</summary>
    public string GroupsClaim { get; init; } = "groups";

    /// <summary>Answer 404 instead of 403 for a model the caller may not use, so that model names do not leak.</summary>
    public bool HideForbiddenModels { get; init; }

    /// <summary>API keys for tools that cannot do OpenID Connect; off by default.</summary>
    public ApiKeyOptions ApiKeys { get; init; } = new();

    /// <summary>The realm's public client the web console signs people in with (authorization code + PKCE).</summary>
    public string ConsoleClientId { get; init; } = "appliance-console";

    /// <summary>
    /// How long a console session lasts after its cookie was last renewed (each token refresh renews it; Keycloak's
    /// SSO session limits end it too; without a refresh token, never longer than the person's access token).
    /// </summary>
    public TimeSpan ConsoleSessionLifetime { get; init; } = TimeSpan.FromHours(8);

    public string RoleClientId => string.IsNullOrEmpty(ClientId) ? Audience : ClientId;
}

/// <summary>API keys issued by administrators to Keycloak identities (Identity:ApiKeys).</summary>
public sealed record ApiKeyOptions
{
    public bool Enabled { get; init; }

    public int DefaultLifetimeDays { get; init; } = 90;

    public int MaxLifetimeDays { get; init; } = 365;

    /// <summary>
    /// Service accounts (not people) an administrator may issue keys to, besides themself: a key acts as its owner in
    /// the audit log, so it is never issued in a colleague's name.
    /// </summary>
    public IReadOnlyList<string> ServiceOwners { get; init; } = [];

    /// <summary>
    /// How often a node rereads the key table: the longest a revocation made on another node of a cluster takes to
    /// apply here (on the node that revoked, it applies at once).
    /// </summary>
    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Suspends the keys of owners disabled or deleted in Keycloak; off while no client is named.</summary>
    public ApiKeyOwnerCheckOptions OwnerCheck { get; init; } = new();
}

/// <summary>
/// Identity:ApiKeys:OwnerCheck: a confidential Keycloak client whose service account holds realm-management's
/// view-users role; the appliance looks up each key owner's account with it.
/// </summary>
public sealed record ApiKeyOwnerCheckOptions
{
    public string ClientId { get; init; } = string.Empty;

    public string ClientSecret { get; init; } = string.Empty;

    /// <summary>How often owners are looked up: the longest a disabled owner's keys keep working.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long keys keep working while no check succeeds (Keycloak down, the client's secret rotated): past it, and
    /// on a node that has not checked since it started, every key is refused until a check succeeds.
    /// </summary>
    public TimeSpan MaxStaleness { get; init; } = TimeSpan.FromHours(1);
}

/// <summary>The Keycloak role names behind the appliance's policies.</summary>
public sealed record RoleNames
{
    public string User { get; init; } = "appliance-user";

    public string Admin { get; init; } = "appliance-admin";

    public string Auditor { get; init; } = "appliance-auditor";

    /// <summary>A role that may see the usage of its own teams (its groups) in the console; empty: administrators only.</summary>
    public string TeamLead { get; init; } = string.Empty;
}
