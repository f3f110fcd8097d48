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
    private static readonly Lazy<TokenizerShape> Gpt2Shape = new(() =>
    {
        using var document = JsonDocument.Parse(Gpt2TokenizerJson.Build());
        return TokenizerShape.Of(document.RootElement, "GPT-2");
    });

    private const int Gpt2VocabularySize = 50257;
    private const int Gpt2MergeCount = 50000;

    public static Gpt2Tokenizer Instance { get; } = new();

    public IReadOnlyList<int> Encode(string text) => Shared.Value.EncodeToIds(text);

    public string Decode(IEnumerable<int> ids) => Shared.Value.Decode(ids);

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
        return shape.Vocabulary.Count == Gpt2VocabularySize && shape.Merges.Count == Gpt2MergeCount && shape.SameAs(Gpt2Shape.Value);
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

        public bool SameAs(TokenizerShape other) =>
            Rules == other.Rules
            && Vocabulary.Count == other.Vocabulary.Count && Vocabulary.All(entry => other.Vocabulary.TryGetValue(entry.Key, out var id) && id == entry.Value)
            && Merges.SequenceEqual(other.Merges)
            && Added.Count == other.Added.Count && Added.All(entry => other.Added.TryGetValue(entry.Key, out var id) && id == entry.Value);
    }
}
