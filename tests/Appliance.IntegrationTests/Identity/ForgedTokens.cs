using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Appliance.IntegrationTests.Identity;

/// <summary>Tokens the provider would never issue: valid-looking Keycloak payloads with one thing wrong each.</summary>
internal static class ForgedTokens
{
    /// <summary>A Keycloak-shaped payload for the realm; tests change one claim.</summary>
    public static JsonObject Payload(string issuer, DateTimeOffset now) => new()
    {
        ["iss"] = issuer,
        ["aud"] = "appliance-api",
        ["sub"] = "7a0e3c1d-2b4f-4e6a-8c9d-0f1e2d3c4b5a",
        ["typ"] = "Bearer",
        ["azp"] = "appliance-console",
        ["preferred_username"] = "mallory",
        ["realm_access"] = new JsonObject { ["roles"] = new JsonArray("appliance-user") },
        ["iat"] = now.ToUnixTimeSeconds(),
        ["nbf"] = now.ToUnixTimeSeconds(),
        ["exp"] = now.AddMinutes(5).ToUnixTimeSeconds(),
    };

    public static string Sign(JsonObject payload, JsonWebKey key) =>
        new JsonWebTokenHandler().CreateToken(payload.ToJsonString(), new SigningCredentials(key, SecurityAlgorithms.RsaSha256));

    /// <summary>A new RSA key; with <paramref name="kid"/> it claims another key's id.</summary>
    public static JsonWebKey NewKey(string? kid = null)
    {
        using var rsa = RSA.Create(2048);
        var key = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(rsa.ExportParameters(includePrivateParameters: true)));
        key.Kid = kid ?? Guid.NewGuid().ToString("N");
        return key;
    }

    public static string Unsigned(JsonObject payload) =>
        $"{Segment(new JsonObject { ["alg"] = "none", ["typ"] = "JWT" })}.{Segment(payload)}.";

    /// <summary>The classic confusion attack: HS256 with the realm's public key as the HMAC secret.</summary>
    public static string HmacWithPublicKey(JsonObject payload, JsonWebKey realmKey)
    {
        var header = Segment(new JsonObject { ["alg"] = "HS256", ["typ"] = "JWT", ["kid"] = realmKey.Kid });
        var body = Segment(payload);
        var secret = Encoding.UTF8.GetBytes(new JsonObject { ["kty"] = "RSA", ["n"] = realmKey.N, ["e"] = realmKey.E }.ToJsonString());
        var signature = HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes($"{header}.{body}"));
        return $"{header}.{body}.{Base64UrlEncoder.Encode(signature)}";
    }

    /// <summary>A genuine token whose payload was edited afterwards (here: an admin role added); the signature stays.</summary>
    public static string Tampered(string token)
    {
        var parts = token.Split('.');
        var payload = JsonNode.Parse(Base64UrlEncoder.Decode(parts[1]))!.AsObject();
        payload["realm_access"] = new JsonObject { ["roles"] = new JsonArray("appliance-user", "appliance-admin") };
        return $"{parts[0]}.{Segment(payload)}.{parts[2]}";
    }

    private static string Segment(JsonObject json) => Base64UrlEncoder.Encode(json.ToJsonString());
}
