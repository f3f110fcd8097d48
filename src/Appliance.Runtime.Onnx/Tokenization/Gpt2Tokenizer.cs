using System.Text.Json;
using Appliance.Engine;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Runtime.Onnx.Tokenization.HuggingFace;
using Microsoft.ML.Tokenizers;

namespace Appliance.Runtime.Onnx.Tokenization;

/// <summary>GPT-2's byte-level BPE through Microsoft.ML.Tokenizers' tiktoken implementation and its GPT-2 data package.</summary>
public sealed class Gpt2Tokenizer : ITokenizer
{
    private static readonly Lazy<TiktokenTokenizer> Shared = new(() => TiktokenTokenizer.CreateForModel("gpt2"));
    // Only a digest of GPT-2's own file is kept: its vocabulary and merges would hold about 15 MB for the process's life.
    private static readonly Lazy<string> Gpt2Digest = new(() =>
    {
        using var document = JsonDocument.Parse(Gpt2TokenizerJson.Build());
        return TokenizerShape.Of(document.RootElement, "GPT-2").Digest();
    });

    // Read from the data package's rank file only when structured outputs first need them.
    private static readonly Lazy<byte[][]> Bytes = new(Gpt2TokenizerJson.TokenBytes);

    private const int Gpt2VocabularySize = 50257;
    private const int Gpt2MergeCount = 50000;

    public static Gpt2Tokenizer Instance { get; } = new();

    public IReadOnlyList<int> Encode(string text) => Shared.Value.EncodeToIds(text);

    public string Decode(IEnumerable<int> ids) => Shared.Value.Decode(ids);

    public byte[]? TokenBytes(int id) => (uint)id < (uint)Bytes.Value.Length ? Bytes.Value[id] : null;

    /// <summary>
    /// Whether a tokenizer.json is GPT-2's own (same vocabulary, merges, added tokens and byte-level rules), so this
    /// faster implementation gives the same ids. A model that declares GPT2Tokenizer with a vocabulary of its own is not.
    /// </summary>
    public static bool IsGpt2File(string path)
    {
        using var document = TokenizerJson.Read(path);
        var root = document.RootElement;
        if (!root.TryGetProperty("model", out var model) || TokenizerJson.Type(model) != "BPE")
        {
            return false;
        }

        // Counts first: building GPT-2's own file to compare against takes seconds, so only a likely match pays for it.
        var shape = TokenizerShape.Of(root, path);
        return shape.Vocabulary.Count == Gpt2VocabularySize && shape.Merges.Count == Gpt2MergeCount && shape.Digest() == Gpt2Digest.Value;
    }

    private sealed record TokenizerShape(Dictionary<string, int> Vocabulary, List<string> Merges, Dictionary<string, int> Added, string Rules)
    {
        public static TokenizerShape Of(JsonElement root, string path)
        {
            var model = TokenizerJson.BpeModel(root, path);
            var rules = string.Join('|', new[] { "normalizer", "pre_tokenizer", "decoder" }.Select(key =>
                root.TryGetProperty(key, out var step) && step.ValueKind == JsonValueKind.Object ? TokenizerJson.Type(step) : "none"));
            return new TokenizerShape(TokenizerJson.Vocabulary(model, path), TokenizerJson.Merges(model, path), TokenizerJson.AddedTokens(root), rules);
        }

        /// <summary>SHA-256 over the rules, the vocabulary and added tokens in id order, and the merges in order.</summary>
        public string Digest()
        {
            using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
            void Add(string line) => hash.AppendData(System.Text.Encoding.UTF8.GetBytes(line + "\n"));
            Add(Rules);
            foreach (var (piece, id) in Vocabulary.OrderBy(entry => entry.Value).ThenBy(entry => entry.Key, StringComparer.Ordinal))
            {
                Add($"v\t{id}\t{piece}");
            }

            foreach (var (piece, id) in Added.OrderBy(entry => entry.Value).ThenBy(entry => entry.Key, StringComparer.Ordinal))
            {
                Add($"a\t{id}\t{piece}");
            }

            foreach (var merge in Merges)
            {
                Add("m\t" + merge);
            }

            return Convert.ToHexString(hash.GetHashAndReset());
        }
    }
}
