using System.Globalization;
using System.Text;
using System.Text.Json;
using Appliance.Audit.Chain;
using Appliance.Audit.Stores;

namespace Appliance.Audit.Export;

/// <summary>One chain as an export wrote it: how many entries and checkpoints, and the last entry (0 and "" for none).</summary>
public sealed record ExportedChain(string Node, long Entries, long LastSequence, string LastHash, long Checkpoints);

/// <summary>
/// The last line of an export, signed with the audit key: what each chain's part of the file holds. A file cut short
/// (a connection lost mid-download answers 200 all the same), or cut by hand at a line boundary, otherwise verified as
/// a shorter chain, and a chain cut off whole as one not exported.
/// </summary>
public sealed record ExportEnd(DateTimeOffset Time, IReadOnlyList<ExportedChain> Chains, string KeyId, string Signature)
{
    public static byte[] SignedBytes(DateTimeOffset time, IEnumerable<ExportedChain> chains)
    {
        var text = new StringBuilder("appliance-audit-export-end-v1\n").Append(CanonicalJson.Time(time)).Append('\n');
        foreach (var chain in chains.OrderBy(c => c.Node, StringComparer.Ordinal))
        {
            text.Append(CultureInfo.InvariantCulture, $"{chain.Node}\n{chain.Entries}\n{chain.LastSequence}\n{chain.LastHash}\n{chain.Checkpoints}\n");
        }

        return Encoding.UTF8.GetBytes(text.ToString());
    }

    public static ExportEnd Sign(CheckpointSigner signer, IReadOnlyList<ExportedChain> chains, DateTimeOffset time) =>
        new(time, chains, signer.KeyId, signer.SignData(SignedBytes(time, chains)));

    public bool SignedWith(System.Security.Cryptography.ECDsa publicKey) => ChainVerifier.Signed(KeyId, SignedBytes(Time, Chains), Signature, publicKey);

    public byte[] Line() => JsonSerializer.SerializeToUtf8Bytes(new
    {
        end = new
        {
            time = CanonicalJson.Time(Time),
            chains = Chains.Select(c => new { node = c.Node, entries = c.Entries, lastSeq = c.LastSequence, lastHash = c.LastHash, checkpoints = c.Checkpoints }),
            keyId = KeyId,
            signature = Signature,
        },
    });

    internal static ExportEnd Parse(JsonElement end) => new(
        SqlAuditStore.ParseTime(end.GetProperty("time").GetString()!),
        [.. end.GetProperty("chains").EnumerateArray().Select(c => new ExportedChain(c.GetProperty("node").GetString()!, c.GetProperty("entries").GetInt64(),
            c.GetProperty("lastSeq").GetInt64(), c.GetProperty("lastHash").GetString()!, c.GetProperty("checkpoints").GetInt64()))],
        end.GetProperty("keyId").GetString()!,
        end.GetProperty("signature").GetString()!);
}
