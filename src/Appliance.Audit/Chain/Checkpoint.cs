using System.Security.Cryptography;
using System.Text;

namespace Appliance.Audit.Chain;

/// <summary>
/// A signed statement "the chain of node N had entry S with hash H at time T". An auditor holding the public key can
/// prove that entries up to S were not changed since, and that none of them were cut off.
/// </summary>
public sealed record Checkpoint(string Node, long Sequence, string Hash, DateTimeOffset Time, string KeyId, string Signature)
{
    /// <summary>The bytes the signature covers.</summary>
    public static byte[] SignedBytes(string node, long sequence, string hash, DateTimeOffset time) =>
        Encoding.UTF8.GetBytes($"appliance-audit-checkpoint-v1\n{node}\n{sequence}\n{hash}\n{CanonicalJson.Time(time)}");
}

/// <summary>
/// Signs checkpoints with an ECDSA P-256 key (PEM). The public key, given to auditors, verifies them offline.
/// </summary>
public sealed class CheckpointSigner : IDisposable
{
    private readonly ECDsa _key;

    private CheckpointSigner(ECDsa key)
    {
        _key = key;
        KeyId = KeyIdOf(key);
    }

    public string KeyId { get; }

    /// <summary>The private key at <paramref name="path"/>, created (owner-readable only, with a .pub.pem beside it) when missing.</summary>
    public static CheckpointSigner LoadOrCreate(string path)
    {
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            using var created = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            // Durable before the first checkpoint is signed with it: a key lost in a power cut would be replaced by a
            // new one, and the checkpoints signed before would name a key nobody has.
            Stores.DurableFile.Write(path, System.Text.Encoding.ASCII.GetBytes(created.ExportPkcs8PrivateKeyPem()), ownerOnly: true, overwrite: false);
            Stores.DurableFile.Write(PublicKeyPath(path), System.Text.Encoding.ASCII.GetBytes(created.ExportSubjectPublicKeyInfoPem()), ownerOnly: false, overwrite: true);
        }

        var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(path));
        return new CheckpointSigner(key);
    }

    /// <summary>Where the public key of a private key file is written for auditors.</summary>
    public static string PublicKeyPath(string privateKeyPath) =>
        Path.ChangeExtension(privateKeyPath, null) + ".pub.pem";

    public static string KeyIdOf(ECDsa key) => Convert.ToHexStringLower(SHA256.HashData(key.ExportSubjectPublicKeyInfo()))[..16];

    public Checkpoint Sign(string node, long sequence, string hash, DateTimeOffset time) =>
        new(node, sequence, hash, time, KeyId, Convert.ToBase64String(_key.SignData(Checkpoint.SignedBytes(node, sequence, hash, time), HashAlgorithmName.SHA256)));

    public RetentionRecord SignRetention(string node, long through, string hash, long removed, DateTimeOffset oldestRemaining, DateTimeOffset time) =>
        new(node, through, hash, removed, oldestRemaining, time, KeyId,
            Convert.ToBase64String(_key.SignData(RetentionRecord.SignedBytes(node, through, hash, removed, oldestRemaining, time), HashAlgorithmName.SHA256)));

    /// <summary>Whether this key signed the checkpoint (a row in a shared store is not vouched for by being there).</summary>
    public bool Signed(Checkpoint checkpoint)
    {
        try
        {
            return checkpoint.KeyId == KeyId
                && _key.VerifyData(Checkpoint.SignedBytes(checkpoint.Node, checkpoint.Sequence, checkpoint.Hash, checkpoint.Time), Convert.FromBase64String(checkpoint.Signature), HashAlgorithmName.SHA256);
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>A signature over other statements of the audit key (an export's end line).</summary>
    internal string SignData(byte[] data) => Convert.ToBase64String(_key.SignData(data, HashAlgorithmName.SHA256));

    public string PublicKeyPem() => _key.ExportSubjectPublicKeyInfoPem();

    public void Dispose() => _key.Dispose();
}
