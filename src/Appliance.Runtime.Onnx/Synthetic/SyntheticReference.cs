namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>
/// A plain C# forward pass over the same weights as the synthetic ONNX model, one token at a time with its own KV
/// cache. Slow and obvious on purpose: tests compare the engine's logits and tokens with it.
/// </summary>
public sealed class SyntheticReference
{
    public const float LayerNormEpsilon = 1e-5f;
    public const float GeluScale = 0.7978845608f; // sqrt(2 / pi)

    private readonly SyntheticWeights _weights;
    private readonly SyntheticModelSpec _spec;
    private readonly List<float[]>[] _keys;
    private readonly List<float[]>[] _values;

    public SyntheticReference(SyntheticWeights weights)
    {
        _weights = weights;
        _spec = weights.Spec;
        _keys = Enumerable.Range(0, _spec.Layers).Select(_ => new List<float[]>()).ToArray();
        _values = Enumerable.Range(0, _spec.Layers).Select(_ => new List<float[]>()).ToArray();
    }

    public int Position => _keys[0].Count;

    /// <summary>Feeds tokens and returns the logits after the last one.</summary>
    public float[] Feed(IEnumerable<int> tokens)
    {
        float[]? hidden = null;
        foreach (var token in tokens)
        {
            hidden = Step(token);
        }

        return Logits(hidden ?? throw new ArgumentException("No tokens to feed.", nameof(tokens)));
    }

    /// <summary>Greedy generation from a fresh cache: the tokens the engine must produce with temperature 0.</summary>
    public static List<int> GenerateGreedy(SyntheticWeights weights, IReadOnlyList<int> prompt, int maxNewTokens)
    {
        var reference = new SyntheticReference(weights);
        return ReferenceMath.Greedy(reference.Feed, () => reference.Position, weights.Spec.ContextLength, prompt, maxNewTokens);
    }

    private float[] Step(int token)
    {
        var h = _spec.HiddenSize;
        var position = Position;
        var x = new float[h];
        for (var i = 0; i < h; i++)
        {
            x[i] = _weights.TokenEmbedding[(token * h) + i] + _weights.PositionEmbedding[(position * h) + i];
        }

        for (var layer = 0; layer < _spec.Layers; layer++)
        {
            var w = _weights.Layers[layer];
            var a = LayerNorm(x, w.Norm1Scale, w.Norm1Bias);
            var q = ReferenceMath.Linear(a, w.QueryWeight, w.QueryBias, w.QueryBias.Length);
            _keys[layer].Add(ReferenceMath.Linear(a, w.KeyWeight, w.KeyBias, w.KeyBias.Length));
            _values[layer].Add(ReferenceMath.Linear(a, w.ValueWeight, w.ValueBias, w.ValueBias.Length));
            var attention = ReferenceMath.Linear(Attend(q, layer), w.OutputWeight, w.OutputBias, w.OutputBias.Length);
            ReferenceMath.Accumulate(x, attention);
            var b = LayerNorm(x, w.Norm2Scale, w.Norm2Bias);
            var up = ReferenceMath.Linear(b, w.UpWeight, w.UpBias, w.UpBias.Length);
            for (var i = 0; i < up.Length; i++)
            {
                up[i] = Gelu(up[i]);
            }

            ReferenceMath.Accumulate(x, ReferenceMath.Linear(up, w.DownWeight, w.DownBias, w.DownBias.Length));
        }

        return x;
    }

    private float[] Attend(float[] q, int layer)
    {
        var d = _spec.HeadSize;
        var group = _spec.Heads / _spec.KvHeads;
        var keys = _keys[layer];
        var values = _values[layer];
        var context = new float[_spec.HiddenSize];
        var scores = new float[keys.Count];
        var scale = 1f / MathF.Sqrt(d);
        for (var head = 0; head < _spec.Heads; head++)
        {
            var kvOffset = head / group * d;
            var max = float.NegativeInfinity;
            for (var t = 0; t < keys.Count; t++)
            {
                var dot = 0f;
                for (var i = 0; i < d; i++)
                {
                    dot += q[(head * d) + i] * keys[t][kvOffset + i];
                }

                scores[t] = dot * scale;
                max = Math.Max(max, scores[t]);
            }

            var sum = 0f;
            for (var t = 0; t < keys.Count; t++)
            {
                scores[t] = MathF.Exp(scores[t] - max);
                sum += scores[t];
            }

            for (var t = 0; t < keys.Count; t++)
            {
                var p = scores[t] / sum;
                for (var i = 0; i < d; i++)
                {
                    context[(head * d) + i] += p * values[t][kvOffset + i];
                }
            }
        }

        return context;
    }

    private float[] Logits(float[] hidden)
    {
        var h = _spec.HiddenSize;
        var normed = LayerNorm(hidden, _weights.FinalNormScale, _weights.FinalNormBias);
        var logits = new float[_spec.VocabularySize];
        for (var token = 0; token < logits.Length; token++)
        {
            var row = _weights.TokenEmbedding.AsSpan(token * h, h);
            var dot = 0f;
            for (var i = 0; i < h; i++)
            {
                dot += normed[i] * row[i];
            }

            logits[token] = dot;
        }

        return logits;
    }

    private static float[] LayerNorm(float[] x, float[] scale, float[] bias)
    {
        var mean = x.Average();
        var variance = x.Select(v => (v - mean) * (v - mean)).Average();
        var inverse = 1f / MathF.Sqrt(variance + LayerNormEpsilon);
        var y = new float[x.Length];
        for (var i = 0; i < x.Length; i++)
        {
            y[i] = ((x[i] - mean) * inverse * scale[i]) + bias[i];
        }

        return y;
    }

    private static float Gelu(float x) => 0.5f * x * (1f + MathF.Tanh(GeluScale * (x + (0.044715f * x * x * x))));

}
