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

/// <summary>Which graph a synthetic decoder is written as.</summary>
public enum SyntheticArchitecture
{
    /// <summary>GPT-2: learned positions, LayerNorm, GELU MLP, tied head, position_ids input.</summary>
    Gpt2,

    /// <summary>
    /// onnxruntime-genai's model builder for Llama-family models: RMSNorm as (Skip)SimplifiedLayerNormalization,
    /// packed QKV into GroupQueryAttention with rotary embedding inside (cos/sin caches, no position_ids input),
    /// SwiGLU MLP, untied head; always a shared past/present buffer.
    /// </summary>
    Llama,
}

/// <summary>The element type of the KV cache and logits at the model's boundary.</summary>
public enum BoundaryPrecision
{
    Float32,

    /// <summary>KV cache and logits float16, attention in float16 (as CUDA fp16 and int4 exports present themselves).</summary>
    Float16,

    /// <summary>KV cache and logits bfloat16 around float32 compute (Cast nodes; the CPU has no bfloat16 attention).</summary>
    BFloat16,
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

    public SyntheticArchitecture Architecture { get; init; } = SyntheticArchitecture.Gpt2;

    /// <summary>genai_config.json's model.type: "decoder" for GPT-2 style; "llama", "qwen2", "mistral", ... for builder style.</summary>
    public string ModelType { get; init; } = "decoder";

    /// <summary>Builder style: a bias on the packed QKV projection, as Qwen2 has.</summary>
    public bool QkvBias { get; init; }

    /// <summary>Builder style: KV cache and logits element type.</summary>
    public BoundaryPrecision Precision { get; init; } = BoundaryPrecision.Float32;

    /// <summary>Builder style: every MatMul as MatMulNBits with 4-bit weights (symmetric, blocks of 32), as the builder's int4 export.</summary>
    public bool Int4Weights { get; init; }

    /// <summary>MatMulNBits accuracy level: 4 (int8 activations, the builder's CPU default) or 0 (float32).</summary>
    public int Int4AccuracyLevel { get; init; } = 4;

    /// <summary>Builder style: a sliding attention window (GroupQueryAttention local_window_size) on odd layers, as Gemma 2 alternates; null: none.</summary>
    public int? SlidingWindow { get; init; }

    /// <summary>
    /// Builder style: LongRoPE's two rotary caches (Phi-3 128k, Phi-3.5, Phi-4-mini), picked by the attention mask's
    /// width as the builder's graph does: up to this many positions the short cache, beyond it the long one (here the
    /// angles of a 16 times larger base). Null: one cache.
    /// </summary>
    public int? LongRopeSwitch { get; init; }

    /// <summary>Write the weights to model.onnx.data beside model.onnx, as the builder does.</summary>
    public bool ExternalData { get; init; }

    /// <summary>
    /// False writes the CUDA provider option <c>use_tf32</c> "0" into genai_config.json: float32 MatMuls on a GPU then
    /// round as on the CPU (the GPU check compares greedy tokens with a CPU run). True: no provider options.
    /// </summary>
    public bool CudaTf32 { get; init; } = true;

    /// <summary>Builder style: the MLP's inner width; null: 8/3 of the hidden size rounded up to a multiple of 32 (Llama's ratio).</summary>
    public int? FeedForwardSize { get; init; }

    /// <summary>Builder style: rotary embedding base.</summary>
    public float RopeTheta { get; init; } = 10000f;

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

    public int IntermediateSize => Architecture == SyntheticArchitecture.Llama
        ? FeedForwardSize ?? ((HiddenSize * 8 / 3) + 31) / 32 * 32
        : 4 * HiddenSize;

    public long ParameterCount => Architecture == SyntheticArchitecture.Llama ? LlamaParameters :
        ((long)VocabularySize * HiddenSize) + ((long)ContextLength * HiddenSize) + (2L * HiddenSize) +
        (Layers * (LayerParameters + (4L * HiddenSize)));

    /// <summary>Embedding, untied head, final norm, and per layer: packed QKV (+ bias), output, gate, up, down, two norms.</summary>
    private long LlamaParameters =>
        (2L * VocabularySize * HiddenSize) + HiddenSize +
        (Layers * (((long)HiddenSize * (HiddenSize + (2 * KvHeads * HeadSize))) + (QkvBias ? HiddenSize + (2 * KvHeads * HeadSize) : 0) +
            ((long)HiddenSize * HiddenSize) + (3L * HiddenSize * IntermediateSize) + (2L * HiddenSize)));

    private long LayerParameters =>
        ((long)HiddenSize * HiddenSize * 2) + (2L * HiddenSize * KvHeads * HeadSize) + (2L * HiddenSize * IntermediateSize) +
        (2L * HiddenSize) + (2L * KvHeads * HeadSize) + IntermediateSize + HiddenSize;

    /// <summary>A very small model for unit tests (about 3.3M parameters, almost all of them the embedding).</summary>
    public static SyntheticModelSpec Tiny { get; } = new();

    /// <summary>About 26M parameters: hidden 384, 4 layers, 6 heads.</summary>
    public static SyntheticModelSpec Small { get; } = new() { HiddenSize = 384, Layers = 4, Heads = 6, KvHeads = 6, ContextLength = 1024 };

    /// <summary>GPT-2 small's shape, about 124M parameters: hidden 768, 12 layers, 12 heads.</summary>
    public static SyntheticModelSpec Base { get; } = new() { HiddenSize = 768, Layers = 12, Heads = 12, KvHeads = 12, ContextLength = 1024 };

    /// <summary>A tiny model-builder-style Llama (hidden 64, 2 layers, 4 heads over 2 KV heads).</summary>
    public static SyntheticModelSpec TinyLlama { get; } = new()
    {
        Architecture = SyntheticArchitecture.Llama, ModelType = "llama", Layout = KvCacheLayout.SharedBuffer,
    };

    /// <summary>Builder-style Llama at GPT-2 small's width: hidden 768, 12 layers, 12 heads over 4 KV heads (about 152M parameters).</summary>
    public static SyntheticModelSpec BaseLlama { get; } = TinyLlama with { HiddenSize = 768, Layers = 12, Heads = 12, KvHeads = 4, ContextLength = 1024 };

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

        if (Architecture == SyntheticArchitecture.Llama)
        {
            if (Layout != KvCacheLayout.SharedBuffer)
            {
                return "builder-style models use GroupQueryAttention with a shared past/present buffer";
            }

            if (HeadSize % 16 != 0)
            {
                return $"head size {HeadSize} must be a multiple of 16 (GroupQueryAttention with rotary embedding)";
            }

            if (Int4Weights && (HiddenSize % 32 != 0 || IntermediateSize % 32 != 0))
            {
                return "int4 weights need the hidden and MLP sizes to be multiples of the block size 32";
            }

            if (SlidingWindow is < 1)
            {
                return "the sliding window must be positive when set";
            }

            if (LongRopeSwitch is { } limit && (limit < 1 || limit >= ContextLength))
            {
                return "the LongRoPE switch must lie between 1 and the context length";
            }
        }
        else if (Precision != BoundaryPrecision.Float32 || Int4Weights || QkvBias || SlidingWindow is not null || LongRopeSwitch is not null)
        {
            return "precision, int4 weights, QKV bias, sliding windows and LongRoPE are written for builder-style (Llama) models only";
        }

        return EosTokenId < 0 || EosTokenId >= VocabularySize ? "the EOS token must be inside the vocabulary" : null;
    }
}
