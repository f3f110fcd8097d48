namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>
/// One builder-style layer: RMSNorm scales, the packed QKV projection [hidden, q + k + v] (with its bias for
/// Qwen2-style models), output, gate, up and down projections ([in, out], row-major, as MatMul takes them).
/// </summary>
public sealed record LlamaLayerWeights(
    float[] InputNorm,
    float[] QkvWeight,
    float[]? QkvBias,
    float[] OutputWeight,
    float[] PostAttentionNorm,
    float[] GateWeight,
    float[] UpWeight,
    float[] DownWeight);

/// <summary>
/// All weights of a builder-style decoder, drawn deterministically from the spec's seed. With int4 weights every
/// projection (the head too) holds the values its 4-bit codes stand for, so the reference computes with exactly
/// what the model holds; the codes themselves are in <see cref="Quantised"/>.
/// </summary>
public sealed class LlamaWeights
{
    private LlamaWeights(SyntheticModelSpec spec, float[] embedding, LlamaLayerWeights[] layers, float[] finalNorm, float[] head, Dictionary<float[], Int4Blocks> quantised)
    {
        Spec = spec;
        Embedding = embedding;
        Layers = layers;
        FinalNorm = finalNorm;
        Head = head;
        Quantised = quantised;
    }

    public SyntheticModelSpec Spec { get; }

    /// <summary>[vocabulary, hidden].</summary>
    public float[] Embedding { get; }

    public IReadOnlyList<LlamaLayerWeights> Layers { get; }

    public float[] FinalNorm { get; }

    /// <summary>[hidden, vocabulary].</summary>
    public float[] Head { get; }

    /// <summary>The 4-bit form of each projection matrix (keyed by the matrix), when the spec asks for int4 weights.</summary>
    public IReadOnlyDictionary<float[], Int4Blocks> Quantised { get; }

    public int QkvWidth => Spec.HiddenSize + (2 * Spec.KvHeads * Spec.HeadSize);

    public static LlamaWeights Create(SyntheticModelSpec spec)
    {
        if (spec.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(spec));
        }

        var random = new SplitMix64((ulong)spec.Seed);
        var h = spec.HiddenSize;
        var qkv = h + (2 * spec.KvHeads * spec.HeadSize);
        var ff = spec.IntermediateSize;
        var scale = spec.LayerWeightScale;
        var quantised = new Dictionary<float[], Int4Blocks>(ReferenceEqualityComparer.Instance);
        float[] Matrix(int inputs, int outputs)
        {
            var values = random.NextUniformArray((long)inputs * outputs, scale);
            if (!spec.Int4Weights)
            {
                return values;
            }

            var (blocks, dequantised) = Int4Blocks.Quantise(values, inputs, outputs);
            quantised[dequantised] = blocks;
            return dequantised;
        }

        float[] Norm() => random.NextUniformArray(h, 0.1f, 1f);

        var embedding = random.NextUniformArray((long)spec.VocabularySize * h, spec.EmbeddingScale);
        var layers = new LlamaLayerWeights[spec.Layers];
        for (var i = 0; i < layers.Length; i++)
        {
            layers[i] = new LlamaLayerWeights(
                Norm(),
                Matrix(h, qkv),
                spec.QkvBias ? random.NextUniformArray(qkv, scale) : null,
                Matrix(h, h),
                Norm(),
                Matrix(h, ff),
                Matrix(h, ff),
                Matrix(ff, h));
        }

        var finalNorm = Norm();
        var head = Matrix(h, spec.VocabularySize);
        return new LlamaWeights(spec, embedding, layers, finalNorm, head, quantised);
    }
}
