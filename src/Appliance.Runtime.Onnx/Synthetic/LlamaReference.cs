namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>
/// A plain C# forward pass over a builder-style model's weights, one token at a time with its own KV cache: RMSNorm,
/// rotary embedding (non-interleaved halves, as GroupQueryAttention applies it), grouped-query attention with the
/// optional sliding window, SwiGLU. It rounds where the model rounds: bfloat16 keys and values as the bfloat16
/// variant stores them (exact), float16 queries, keys, values and attention output as float16 attention does (close
/// to ONNX Runtime's float16 kernels, not guaranteed bit for bit).
/// </summary>
public sealed class LlamaReference
{
    public const float RmsEpsilon = 1e-5f;

    private readonly LlamaWeights _weights;
    private readonly SyntheticModelSpec _spec;
    private readonly List<float[]>[] _keys;
    private readonly List<float[]>[] _values;
    private readonly (float[] Cos, float[] Sin) _rotary;

    public LlamaReference(LlamaWeights weights)
    {
        _weights = weights;
        _spec = weights.Spec;
        _keys = [.. Enumerable.Range(0, _spec.Layers).Select(_ => new List<float[]>())];
        _values = [.. Enumerable.Range(0, _spec.Layers).Select(_ => new List<float[]>())];
        _rotary = RotaryCache(_spec);
    }

    public int Position => _keys[0].Count;

    /// <summary>
    /// The rotary caches GroupQueryAttention takes, [context, head_size / 2] each: cos and sin of position * theta^(-2i / head_size).
    /// Rounded to float16 when attention runs in float16 (the caches then have the query's type).
    /// </summary>
    public static (float[] Cos, float[] Sin) RotaryCache(SyntheticModelSpec spec)
    {
        var half = spec.HeadSize / 2;
        var frequencies = Enumerable.Range(0, half).Select(i => (float)(1.0 / Math.Pow(spec.RopeTheta, 2.0 * i / spec.HeadSize))).ToArray();
        var cos = new float[spec.ContextLength * half];
        var sin = new float[spec.ContextLength * half];
        for (var p = 0; p < spec.ContextLength; p++)
        {
            for (var i = 0; i < half; i++)
            {
                var angle = p * frequencies[i];
                cos[(p * half) + i] = spec.Precision == BoundaryPrecision.Float16 ? (float)(Half)MathF.Cos(angle) : MathF.Cos(angle);
                sin[(p * half) + i] = spec.Precision == BoundaryPrecision.Float16 ? (float)(Half)MathF.Sin(angle) : MathF.Sin(angle);
            }
        }

        return (cos, sin);
    }

    /// <summary>Whether layer <paramref name="layer"/> attends through the sliding window (odd layers, as Gemma 2 alternates).</summary>
    public static bool IsWindowed(SyntheticModelSpec spec, int layer) => spec.SlidingWindow is not null && layer % 2 == 1;

    public float[] Feed(IEnumerable<int> tokens)
    {
        float[]? hidden = null;
        foreach (var token in tokens)
        {
            hidden = Step(token);
        }

        return Logits(hidden ?? throw new ArgumentException("No tokens to feed.", nameof(tokens)));
    }

    public static List<int> GenerateGreedy(LlamaWeights weights, IReadOnlyList<int> prompt, int maxNewTokens)
    {
        var reference = new LlamaReference(weights);
        return ReferenceMath.Greedy(reference.Feed, () => reference.Position, weights.Spec.ContextLength, prompt, maxNewTokens);
    }

    private float[] Step(int token)
    {
        var h = _spec.HiddenSize;
        var kv = _spec.KvHeads * _spec.HeadSize;
        var position = Position;
        var x = _weights.Embedding.AsSpan(token * h, h).ToArray();
        for (var layer = 0; layer < _spec.Layers; layer++)
        {
            var w = _weights.Layers[layer];
            var qkv = ReferenceMath.Linear(RmsNorm(x, w.InputNorm), w.QkvWeight, w.QkvBias, _weights.QkvWidth);
            var q = qkv[..h];
            var k = qkv[h..(h + kv)];
            var v = qkv[(h + kv)..];
            if (_spec.Precision == BoundaryPrecision.Float16)
            {
                // Attention runs in float16: its inputs are rounded, and so is what rotary writes.
                Round(q);
                Round(k);
                Round(v);
            }

            Rotate(q, _spec.Heads, position);
            Rotate(k, _spec.KvHeads, position);
            if (_spec.Precision != BoundaryPrecision.Float32)
            {
                // Stored keys and values take the boundary type; with float16 the queries were rounded too.
                if (_spec.Precision == BoundaryPrecision.Float16)
                {
                    Round(q);
                }

                Round(k);
                Round(v);
            }

            _keys[layer].Add(k);
            _values[layer].Add(v);
            var context = Attend(q, layer, position);
            if (_spec.Precision == BoundaryPrecision.Float16)
            {
                Round(context);
            }

            ReferenceMath.Accumulate(x, ReferenceMath.Linear(context, w.OutputWeight, null, h));
            var y = RmsNorm(x, w.PostAttentionNorm);
            var gate = ReferenceMath.Linear(y, w.GateWeight, null, _spec.IntermediateSize);
            var up = ReferenceMath.Linear(y, w.UpWeight, null, _spec.IntermediateSize);
            for (var i = 0; i < gate.Length; i++)
            {
                gate[i] = gate[i] / (1f + MathF.Exp(-gate[i])) * up[i];
            }

            ReferenceMath.Accumulate(x, ReferenceMath.Linear(gate, w.DownWeight, null, h));
        }

        return x;
    }

    /// <summary>Rotates each head's halves: x[i]cos - x[i + d/2]sin and x[i + d/2]cos + x[i]sin, angle = position * frequency i.</summary>
    private void Rotate(float[] vector, int heads, int position)
    {
        var d = _spec.HeadSize;
        var half = d / 2;
        for (var head = 0; head < heads; head++)
        {
            var start = head * d;
            for (var i = 0; i < half; i++)
            {
                var cos = _rotary.Cos[(position * half) + i];
                var sin = _rotary.Sin[(position * half) + i];
                var a = vector[start + i];
                var b = vector[start + half + i];
                vector[start + i] = (a * cos) - (b * sin);
                vector[start + half + i] = (b * cos) + (a * sin);
            }
        }
    }

    private float[] Attend(float[] q, int layer, int position)
    {
        var d = _spec.HeadSize;
        var group = _spec.Heads / _spec.KvHeads;
        var keys = _keys[layer];
        var values = _values[layer];
        var first = IsWindowed(_spec, layer) ? Math.Max(0, position - _spec.SlidingWindow!.Value + 1) : 0;
        var context = new float[_spec.HiddenSize];
        var scores = new float[keys.Count];
        var scale = 1f / MathF.Sqrt(d);
        for (var head = 0; head < _spec.Heads; head++)
        {
            var kvOffset = head / group * d;
            var max = float.NegativeInfinity;
            for (var t = first; t < keys.Count; t++)
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
            for (var t = first; t < keys.Count; t++)
            {
                scores[t] = MathF.Exp(scores[t] - max);
                sum += scores[t];
            }

            for (var t = first; t < keys.Count; t++)
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
        var logits = ReferenceMath.Linear(RmsNorm(hidden, _weights.FinalNorm), _weights.Head, null, _spec.VocabularySize);
        if (_spec.Precision != BoundaryPrecision.Float32)
        {
            Round(logits);
        }

        return logits;
    }

    private void Round(float[] values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = _spec.Precision == BoundaryPrecision.BFloat16 ? BFloat16Bits.Round(values[i]) : (float)(Half)values[i];
        }
    }

    private static float[] RmsNorm(float[] x, float[] scale)
    {
        var meanSquare = 0f;
        foreach (var value in x)
        {
            meanSquare += value * value;
        }

        var inverse = 1f / MathF.Sqrt((meanSquare / x.Length) + RmsEpsilon);
        var y = new float[x.Length];
        for (var i = 0; i < x.Length; i++)
        {
            y[i] = x[i] * inverse * scale[i];
        }

        return y;
    }

}
