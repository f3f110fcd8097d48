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

    /// <summary>
    /// "v1:&lt;scope&gt;:&lt;base64 nonce | ciphertext | tag&gt;" with the scope as <see cref="NameOf"/> writes it; the
    /// scope's key is created on first use.
    /// </summary>
    public string Seal(string scope, string plaintext)
    {
        scope = NameOf(scope);
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
        if (parts.Length != 3 || parts[0] != Version || !IsName(parts[1]))
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
        var path = KeyPath(NameOf(scope));
        if (!File.Exists(path))
        {
            return false;
        }

        // Overwrite before deleting, so the key does not linger in the file's old blocks on simple file systems.
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            stream.Write(RandomNumberGenerator.GetBytes(32));
            stream.Flush(flushToDisk: true);
        }

        Stores.DurableFile.Delete(path); // a deletion reported done must not come back after a power cut
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
            // On the disk before any text is sealed with it: a key lost in a power cut would leave committed records
            // whose text nobody can read.
            Stores.DurableFile.Write(path, key, ownerOnly: true, overwrite: false);
            return key;
        }
    }

    /// <summary>
    /// The name a scope's key file and sealed texts carry: letters, digits, '-', '_' and '.' as they are (so the names
    /// of existing keys stay), any other character - a model id like "meta-llama/Llama-3.1-8B" or "llama3:8b", a
    /// label with a space, a leading '.' - as '%' and the hex of its UTF-8 bytes. Two scopes never share a name, and no
    /// name leaves the folder or contains the ':' that separates a sealed text's parts.
    /// </summary>
    public static string NameOf(string scope)
    {
        if (scope.Length == 0)
        {
            throw new ArgumentException("an empty scope cannot name a content key", nameof(scope));
        }

        var name = new StringBuilder(scope.Length);
        for (var i = 0; i < scope.Length; i++)
        {
            var c = scope[i];
            if (char.IsAsciiLetterOrDigit(c) || c is '-' or '_' || (c == '.' && i > 0))
            {
                name.Append(c);
                continue;
            }

            var length = char.IsSurrogatePair(scope, i) ? 2 : 1;
            foreach (var b in Encoding.UTF8.GetBytes(scope.Substring(i, length)))
            {
                name.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }

            i += length - 1;
        }

        return name.ToString();
    }

    private static bool IsName(string name) =>
        name.Length > 0 && name[0] != '.' && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '%');

    private string KeyPath(string name) => Path.Combine(folder, name + ".key");
}
