using System.Security.Cryptography;
using System.Text;

namespace Appliance.Audit.Content;

/// <summary>
/// Prompt and completion text kept in audit records only encrypted (AES-256-GCM), with one key per scope (a model or a
/// classification label). The chain's hashes cover the ciphertext, so deleting a scope's key file erases that content
/// for good while every chain still verifies.
/// </summary>
public sealed class ContentVault(string folder)
{
    private const string Version = "v1";
    private readonly Lock _gate = new();

    /// <summary>"v1:&lt;scope&gt;:&lt;base64 nonce | ciphertext | tag&gt;"; the scope's key is created on first use.</summary>
    public string Seal(string scope, string plaintext)
    {
        var key = Key(scope, create: true)!;
        var nonce = RandomNumberGenerator.GetBytes(AesGcm.NonceByteSizes.MaxSize);
        var clear = Encoding.UTF8.GetBytes(plaintext);
        var cipher = new byte[clear.Length];
        var tag = new byte[AesGcm.TagByteSizes.MaxSize];
        using (var aes = new AesGcm(key, tag.Length))
        {
            aes.Encrypt(nonce, clear, cipher, tag, Encoding.UTF8.GetBytes(scope));
        }

        return $"{Version}:{scope}:{Convert.ToBase64String([.. nonce, .. cipher, .. tag])}";
    }

    /// <summary>The text, or null when its key was destroyed. Throws when the sealed text was altered.</summary>
    public string? Open(string sealedText)
    {
        var parts = sealedText.Split(':', 3);
        if (parts.Length != 3 || parts[0] != Version)
        {
            throw new FormatException("not sealed audit content");
        }

        if (Key(parts[1], create: false) is not { } key)
        {
            return null;
        }

        var blob = Convert.FromBase64String(parts[2]);
        var nonceSize = AesGcm.NonceByteSizes.MaxSize;
        var tagSize = AesGcm.TagByteSizes.MaxSize;
        var clear = new byte[blob.Length - nonceSize - tagSize];
        using var aes = new AesGcm(key, tagSize);
        aes.Decrypt(blob.AsSpan(0, nonceSize), blob.AsSpan(nonceSize, clear.Length), blob.AsSpan(blob.Length - tagSize), clear, Encoding.UTF8.GetBytes(parts[1]));
        return Encoding.UTF8.GetString(clear);
    }

    /// <summary>Destroys a scope's key: its recorded content can never be read again.</summary>
    public bool Destroy(string scope)
    {
        var path = KeyPath(scope);
        if (!File.Exists(path))
        {
            return false;
        }

        // Overwrite before deleting, so the key does not linger in the file's old blocks on simple file systems.
        File.WriteAllBytes(path, RandomNumberGenerator.GetBytes(32));
        File.Delete(path);
        return true;
    }

    private byte[]? Key(string scope, bool create)
    {
        var path = KeyPath(scope);
        lock (_gate)
        {
            if (File.Exists(path))
            {
                return File.ReadAllBytes(path);
            }

            if (!create)
            {
                return null;
            }

            Directory.CreateDirectory(folder);
            var key = RandomNumberGenerator.GetBytes(32);
            var temporary = path + ".tmp";
            File.WriteAllBytes(temporary, key);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            File.Move(temporary, path);
            return key;
        }
    }

    private string KeyPath(string scope)
    {
        if (scope.Length == 0 || scope.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')) || scope.StartsWith('.'))
        {
            throw new ArgumentException($"'{scope}' cannot name a content key: use letters, digits, '-', '_' and '.'", nameof(scope));
        }

        return Path.Combine(folder, scope + ".key");
    }
}
