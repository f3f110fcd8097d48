using System.Security.Cryptography;
using System.Text;

namespace Appliance.Identity.ApiKeys;

/// <summary>
/// The text of an API key: "apk_&lt;id&gt;_&lt;secret&gt;". The id finds the stored record; the secret (32 random bytes)
/// proves possession. The prefix tells it apart from a JWT in the same Authorization header.
/// </summary>
public static class ApiKeySecret
{
    public const string Prefix = "apk_";

    public static (string Id, string Key, string SecretHash) Generate()
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var secret = Base64Url(RandomNumberGenerator.GetBytes(32));
        return (id, $"{Prefix}{id}_{secret}", Hash(secret));
    }

    public static bool LooksLikeKey(string? token) => token is not null && token.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>The id and secret of a key, or null when it is not a well-formed key.</summary>
    public static (string Id, string Secret)? Parse(string key)
    {
        if (!LooksLikeKey(key))
        {
            return null;
        }

        var rest = key[Prefix.Length..];
        var separator = rest.IndexOf('_', StringComparison.Ordinal);
        return separator == 16 && rest.Length > separator + 1 ? (rest[..separator], rest[(separator + 1)..]) : null;
    }

    public static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <summary>Compares in constant time, so that response timing reveals nothing about the stored hash.</summary>
    public static bool Matches(string secret, string storedHash) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Hash(secret)), Encoding.ASCII.GetBytes(storedHash));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
