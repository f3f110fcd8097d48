using Appliance.Engine;
using Microsoft.ML.Tokenizers;

namespace Appliance.Runtime.Onnx.Tokenization;

/// <summary>GPT-2's byte-level BPE through Microsoft.ML.Tokenizers' tiktoken implementation and its GPT-2 data package.</summary>
public sealed class Gpt2Tokenizer : ITokenizer
{
    private static readonly Lazy<TiktokenTokenizer> Shared = new(() => TiktokenTokenizer.CreateForModel("gpt2"));

    public static Gpt2Tokenizer Instance { get; } = new();

    public IReadOnlyList<int> Encode(string text) => Shared.Value.EncodeToIds(text);

    public string Decode(IEnumerable<int> ids) => Shared.Value.Decode(ids);
}
