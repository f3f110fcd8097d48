namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>How the KV cache tensors of a decoder export behave.</summary>
public enum KvCacheLayout
{
    /// <summary>Optimum-style: present = concat(past, new); the tensors grow every step.</summary>
    Concatenating,

    /// <summary>
    /// onnxruntime-genai model builder style: GroupQueryAttention (com.microsoft) with preallocated
    /// [batch, kv_heads, max_length, head_size] buffers that past and present share; rows are right-padded and
    /// the attention mask's row sums give each row's length.
    /// </summary>
    SharedBuffer,
}

/// <summary>
/// Shape and seed of a synthetic GPT-style decoder. Weights are deterministic from <see cref="Seed"/>, so a model
/// written twice is byte-identical and the C# reference forward pass can rebuild the same weights.
/// </summary>
public sealed record SyntheticModelSpec
{
    /// <summary>GPT-2's vocabulary, so the GPT-2 tokenizer fits.</summary>
    public int VocabularySize { get; init; } = 50257;

    public int HiddenSize { get; init; } = 64;

    public int Layers { get; init; } = 2;

    public int Heads { get; init; } = 4;

    public int KvHeads { get; init; } = 2;

    public int ContextLength { get; init; } = 256;

    public long Seed { get; init; } = 1;

    public KvCacheLayout Layout { get; init; } = KvCacheLayout.Concatenating;

    /// <summary>Half-width of the uniform distribution the embeddings are drawn from (0.0346 gives GPT-2's 0.02 deviation).</summary>
    public float EmbeddingScale { get; init; } = 0.0346f;

    /// <summary>
    /// Half-width for the layers' weights. Larger than GPT-2's initialisation so that the layers, not the tied
    /// embedding of the last token, decide the next token: random weights then give varied text, not one token repeated.
    /// </summary>
    public float? WeightScale { get; init; }

    /// <summary>The layers' half-width in use: <see cref="WeightScale"/>, or 3.2 / sqrt(hidden) (0.4 at hidden 64).</summary>
    public float LayerWeightScale => WeightScale ?? (3.2f / MathF.Sqrt(HiddenSize));

    public int EosTokenId { get; init; } = 50256;

    public int HeadSize => HiddenSize / Heads;

    public int IntermediateSize => 4 * HiddenSize;

    public long ParameterCount =>
        ((long)VocabularySize * HiddenSize) + ((long)ContextLength * HiddenSize) + (2L * HiddenSize) +
        (Layers * (LayerParameters + (4L * HiddenSize)));

    private long LayerParameters =>
        ((long)HiddenSize * HiddenSize * 2) + (2L * HiddenSize * KvHeads * HeadSize) + (2L * HiddenSize * IntermediateSize) +
        (2L * HiddenSize) + (2L * KvHeads * HeadSize) + IntermediateSize + HiddenSize;

    /// <summary>A very small model for unit tests (about 3.3M parameters, almost all of them the embedding).</summary>
    public static SyntheticModelSpec Tiny { get; } = new();

    /// <summary>About 26M parameters: hidden 384, 4 layers, 6 heads.</summary>
    public static SyntheticModelSpec Small { get; } = new() { HiddenSize = 384, Layers = 4, Heads = 6, KvHeads = 6, ContextLength = 1024 };

    /// <summary>GPT-2 small's shape, about 124M parameters: hidden 768, 12 layers, 12 heads.</summary>
    public static SyntheticModelSpec Base { get; } = new() { HiddenSize = 768, Layers = 12, Heads = 12, KvHeads = 12, ContextLength = 1024 };

    public string? Validate()
    {
        if (VocabularySize < 2 || HiddenSize < 2 || Layers < 1 || Heads < 1 || KvHeads < 1 || ContextLength < 2)
        {
            return "vocabulary, hidden size, layers, heads, KV heads and context length must be positive";
        }

        if (HiddenSize % Heads != 0)
        {
            return $"hidden size {HiddenSize} must be a multiple of the head count {Heads}";
        }

        if (Heads % KvHeads != 0)
        {
            return $"head count {Heads} must be a multiple of the KV head count {KvHeads}";
        }

        return EosTokenId < 0 || EosTokenId >= VocabularySize ? "the EOS token must be inside the vocabulary" : null;
    }
}
