using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Appliance.Identity;

/// <summary>
/// The embedded default identity for a machine without Keycloak: a local RSA key in the data folder signs
/// Keycloak-shaped tokens that the host accepts on loopback only. `appliance identity token` mints them. It exists so
/// that the appliance runs with one command on a laptop; production refuses it.
/// </summary>
public sealed class DevelopmentIdentity
{
    /// <summary>The issuer of development tokens: plainly not a real authority, so nobody mistakes one for a Keycloak token.</summary>
    public const string Issuer = "urn:appliance:development";

    public const string KeyFileName = "development-signing-key.json";

    private DevelopmentIdentity(JsonWebKey key, string keyPath)
    {
        SigningKey = key;
        KeyPath = keyPath;
    }

    public JsonWebKey SigningKey { get; }

    public string KeyPath { get; }

    /// <summary>The key file in <paramref name="folder"/>, created (readable by its owner only) when missing.</summary>
    public static DevelopmentIdentity LoadOrCreate(string folder)
    {
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, KeyFileName);
        if (!File.Exists(path))
        {
            using var rsa = RSA.Create(2048);
            var key = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(rsa.ExportParameters(includePrivateParameters: true)));
            key.Kid = Base64UrlEncoder.Encode(key.ComputeJwkThumbprint());
            var temporary = path + ".tmp";
            File.WriteAllText(temporary, JsonSerializer.Serialize(key));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            File.Move(temporary, path, overwrite: false); // two processes starting at once: the first key wins
        }

        return Load(path);
    }

    public static DevelopmentIdentity Load(string path)
    {
        var key = new JsonWebKey(File.ReadAllText(path));
        return key.HasPrivateKey
            ? new DevelopmentIdentity(key, path)
            : throw new InvalidDataException($"{path} holds no private key; delete it and a new one is made.");
    }

    /// <summary>A Keycloak-shaped access token for a user or service account.</summary>
    public string Mint(DevelopmentTokenRequest request, DateTimeOffset now)
    {
        var claims = new Dictionary<string, object>
        {
            ["typ"] = "Bearer",
            ["azp"] = request.ClientId,
            ["preferred_username"] = request.Username,
            ["sid"] = Guid.NewGuid().ToString(),
            ["realm_access"] = new Dictionary<string, object> { ["roles"] = request.Roles.ToArray() },
            ["scope"] = "openid profile",
        };
        if (request.Clearance is { } clearance)
        {
            claims[request.ClearanceClaim] = clearance;
        }

        if (request.Groups.Count > 0)
        {
            claims["groups"] = request.Groups.ToArray();
        }

        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = request.Audience,
            Subject = new System.Security.Claims.ClaimsIdentity([new System.Security.Claims.Claim("sub", SubjectOf(request.Username))]),
            Claims = claims,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = now.Add(request.Lifetime).UtcDateTime,
            SigningCredentials = new SigningCredentials(SigningKey, SecurityAlgorithms.RsaSha256),
        });
    }

    /// <summary>A stable subject per username, as Keycloak gives each user a fixed id.</summary>
    private static string SubjectOf(string username) =>
        new Guid(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("appliance-development:" + username)).AsSpan(0, 16)).ToString();
}

/// <summary>What a development token says about its holder.</summary>
public sealed record DevelopmentTokenRequest(
    string Username,
    IReadOnlyList<string> Roles,
    string Audience,
    TimeSpan Lifetime,
    string ClientId = "appliance-cli",
    IReadOnlyList<string>? GroupList = null,
    string? Clearance = null,
    string ClearanceClaim = "clearance")
{
    public IReadOnlyList<string> Groups => GroupList ?? [];
}
