namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>The weights of one decoder layer (matrices stored [in, out], row-major, as ONNX MatMul takes them).</summary>
public sealed record SyntheticLayerWeights(
    float[] Norm1Scale,
    float[] Norm1Bias,
    float[] QueryWeight,
    float[] QueryBias,
    float[] KeyWeight,
    float[] KeyBias,
    float[] ValueWeight,
    float[] ValueBias,
    float[] OutputWeight,
    float[] OutputBias,
    float[] Norm2Scale,
    float[] Norm2Bias,
    float[] UpWeight,
    float[] UpBias,
    float[] DownWeight,
    float[] DownBias);

/// <summary>
/// All weights of a synthetic decoder, drawn deterministically from the spec's seed. The language-model head is
/// tied to the token embedding, as in GPT-2.
/// </summary>
public sealed class SyntheticWeights
{
    private SyntheticWeights(SyntheticModelSpec spec, float[] tokenEmbedding, float[] positionEmbedding, SyntheticLayerWeights[] layers, float[] finalNormScale, float[] finalNormBias)
    {
        Spec = spec;
        TokenEmbedding = tokenEmbedding;
        PositionEmbedding = positionEmbedding;
        Layers = layers;
        FinalNormScale = finalNormScale;
        FinalNormBias = finalNormBias;
    }

    public SyntheticModelSpec Spec { get; }

    /// <summary>[vocabulary, hidden].</summary>
    public float[] TokenEmbedding { get; }

    /// <summary>[context, hidden].</summary>
    public float[] PositionEmbedding { get; }

    public IReadOnlyList<SyntheticLayerWeights> Layers { get; }

    public float[] FinalNormScale { get; }

    public float[] FinalNormBias { get; }

    public static SyntheticWeights Create(SyntheticModelSpec spec)
    {
        if (spec.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(spec));
        }

        var random = new SplitMix64((ulong)spec.Seed);
        var h = spec.HiddenSize;
        var kv = spec.KvHeads * spec.HeadSize;
        var ff = spec.IntermediateSize;
        var scale = spec.LayerWeightScale;
        float[] Uniform(long count) => random.NextUniformArray(count, scale);
        float[] Near(int count, float centre) => random.NextUniformArray(count, 0.1f, centre);

        var tokenEmbedding = random.NextUniformArray((long)spec.VocabularySize * h, spec.EmbeddingScale);
        var positionEmbedding = random.NextUniformArray((long)spec.ContextLength * h, spec.EmbeddingScale);
        var layers = new SyntheticLayerWeights[spec.Layers];
        for (var i = 0; i < layers.Length; i++)
        {
            layers[i] = new SyntheticLayerWeights(
                Near(h, 1f), Uniform(h),
                Uniform((long)h * h), Uniform(h),
                Uniform((long)h * kv), Uniform(kv),
                Uniform((long)h * kv), Uniform(kv),
                Uniform((long)h * h), Uniform(h),
                Near(h, 1f), Uniform(h),
                Uniform((long)h * ff), Uniform(ff),
                Uniform((long)ff * h), Uniform(h));
        }

        return new SyntheticWeights(spec, tokenEmbedding, positionEmbedding, layers, Near(h, 1f), Uniform(h));
    }
}
