namespace Appliance.Identity.ApiKeys;

/// <summary>
/// An API key as stored: who it was issued to and what it carries, and the SHA-256 of its secret, never the secret.
/// </summary>
public sealed record ApiKeyRecord
{
    public required string Id { get; init; }

    /// <summary>A label for people ("nightly report job").</summary>
    public required string Name { get; init; }

    /// <summary>The Keycloak username the key acts for; requests with the key are recorded under this name.</summary>
    public required string Owner { get; init; }

    /// <summary>
    /// The Keycloak id of the owner's account, pinned by the first owner check that found it: a later account given the
    /// same username (after the owner's was deleted) has another id, so the key does not come back to life with it.
    /// </summary>
    public string? OwnerId { get; init; }

    public required IReadOnlyList<string> Roles { get; init; }

    public IReadOnlyList<string> Groups { get; init; } = [];

    public string? Clearance { get; init; }

    public required DateTimeOffset CreatedAt { get; init; }

    public required string CreatedBy { get; init; }

    public DateTimeOffset? ExpiresAt { get; init; }

    public DateTimeOffset? RevokedAt { get; init; }

    public string? RevokedBy { get; init; }

    /// <summary>Hex SHA-256 of the secret part. A slow hash is not needed: the secret is 256 random bits.</summary>
    public required string SecretHash { get; init; }

    public bool IsActive(DateTimeOffset now) => RevokedAt is null && (ExpiresAt is null || ExpiresAt > now);
}
