using System.Runtime.InteropServices;
using Appliance.Runtime.Onnx.OnnxFormat;

namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>
/// Writes a decoder the way onnxruntime-genai's model builder writes Llama-family models: inputs input_ids,
/// attention_mask and past_key_values.{i}.key/.value (no position_ids); outputs logits and present.{i}.key/.value;
/// SimplifiedLayerNormalization, then SkipSimplifiedLayerNormalization carrying the residual (output 3), packed QKV
/// into GroupQueryAttention with rotary embedding inside (do_rotary, cos/sin caches), SiLU as Sigmoid and Mul, an
/// untied head. Variants: float16 or bfloat16 KV cache and logits at the boundary, int4 MatMulNBits weights, a
/// sliding window on odd layers, weights in model.onnx.data. The bfloat16 variant computes in float32 between Casts
/// and, as the builder's exports without fused rotary do, takes position_ids and rotates with RotaryEmbedding
/// before attention, so the keys a run attends to are exactly the (rounded) keys it stores.
/// </summary>
internal static class LlamaDecoderGraph
{
    private const string Microsoft = "com.microsoft";

    public static void Write(LlamaWeights weights, Stream destination, Stream? externalData, string externalLocation)
    {
        var spec = weights.Spec;
        var g = new OnnxGraphBuilder("builder_style_decoder");
        if (externalData is not null)
        {
            g.UseExternalData(externalData, externalLocation);
        }

        var boundary = spec.Precision switch
        {
            BoundaryPrecision.Float16 => OnnxDataType.Float16,
            BoundaryPrecision.BFloat16 => OnnxDataType.BFloat16,
            _ => OnnxDataType.Float,
        };
        DeclareInputsAndOutputs(g, spec, boundary);
        var (seqlens, total) = SequenceLengths(g);
        var (cos, sin) = RotaryCaches(g, spec, string.Empty);
        if (spec.LongRopeSwitch is { } limit)
        {
            (cos, sin) = LongRopeCaches(g, spec, limit, cos, sin);
        }

        var root = g.Node("Gather", [g.Initializer("model.embed_tokens.weight", weights.Embedding, spec.VocabularySize, spec.HiddenSize), "input_ids"]);
        var normed = g.Node(
            "SimplifiedLayerNormalization",
            [root, g.Initializer("model.layers.0.input_layernorm.weight", weights.Layers[0].InputNorm, spec.HiddenSize)],
            OnnxAttribute.Integer("axis", -1), OnnxAttribute.Real("epsilon", LlamaReference.RmsEpsilon), OnnxAttribute.Integer("stash_type", 1));
        string final = string.Empty;
        for (var i = 0; i < spec.Layers; i++)
        {
            var w = weights.Layers[i];
            string P(string name) => $"model.layers.{i}.{name}";
            var qkv = Linear(g, weights, normed, w.QkvWeight, spec.HiddenSize, weights.QkvWidth, P("attn.qkv_proj"));
            if (w.QkvBias is not null)
            {
                qkv = g.Node("Add", [qkv, g.Initializer(P("attn.qkv_proj.bias"), w.QkvBias, weights.QkvWidth)]);
            }

            var attention = Attention(g, spec, i, qkv, seqlens, total, cos, sin);
            var output = Linear(g, weights, attention, w.OutputWeight, spec.HiddenSize, spec.HiddenSize, P("attn.o_proj"));
            var post = SkipNorm(g, P("post_attention"), output, root, g.Initializer(P("post_attention_layernorm.weight"), w.PostAttentionNorm, spec.HiddenSize), keepResidual: true);
            root = post[3];
            var gate = Linear(g, weights, post[0], w.GateWeight, spec.HiddenSize, spec.IntermediateSize, P("mlp.gate_proj"));
            var up = Linear(g, weights, post[0], w.UpWeight, spec.HiddenSize, spec.IntermediateSize, P("mlp.up_proj"));
            var activated = g.Node("Mul", [g.Node("Mul", [gate, g.Node("Sigmoid", [gate])]), up]);
            var down = Linear(g, weights, activated, w.DownWeight, spec.IntermediateSize, spec.HiddenSize, P("mlp.down_proj"));
            if (i + 1 < spec.Layers)
            {
                var next = SkipNorm(g, $"model.layers.{i + 1}.input", down, root, g.Initializer($"model.layers.{i + 1}.input_layernorm.weight", weights.Layers[i + 1].InputNorm, spec.HiddenSize), keepResidual: true);
                (normed, root) = (next[0], next[3]);
            }
            else
            {
                final = SkipNorm(g, "model.final", down, root, g.Initializer("model.norm.weight", weights.FinalNorm, spec.HiddenSize), keepResidual: false)[0];
            }
        }

        var logits = Linear(g, weights, final, weights.Head, spec.HiddenSize, spec.VocabularySize, "lm_head");
        if (boundary == OnnxDataType.Float)
        {
            g.NodeWithOutputs("Identity", [logits], ["logits"]);
        }
        else
        {
            g.NodeWithOutputs("Cast", [logits], ["logits"], OnnxAttribute.Integer("to", (long)boundary));
        }

        g.WriteTo(destination, SyntheticDecoderGraph.OpsetVersion, "appliance-synthetic-builder-style");
    }

    private static void DeclareInputsAndOutputs(OnnxGraphBuilder g, SyntheticModelSpec spec, OnnxDataType boundary)
    {
        g.Input("input_ids", OnnxDataType.Int64, "batch_size", "sequence_length");
        g.Input("attention_mask", OnnxDataType.Int64, "batch_size", "total_sequence_length");
        if (RotaryOutsideAttention(spec))
        {
            g.Input("position_ids", OnnxDataType.Int64, "batch_size", "sequence_length");
        }

        for (var i = 0; i < spec.Layers; i++)
        {
            g.Input($"past_key_values.{i}.key", boundary, "batch_size", spec.KvHeads, "past_sequence_length", spec.HeadSize);
            g.Input($"past_key_values.{i}.value", boundary, "batch_size", spec.KvHeads, "past_sequence_length", spec.HeadSize);
        }

        g.Output("logits", boundary, "batch_size", "sequence_length", spec.VocabularySize);
        for (var i = 0; i < spec.Layers; i++)
        {
            g.Output($"present.{i}.key", boundary, "batch_size", spec.KvHeads, "total_sequence_length", spec.HeadSize);
            g.Output($"present.{i}.value", boundary, "batch_size", spec.KvHeads, "total_sequence_length", spec.HeadSize);
        }
    }

    /// <summary>Whether the graph takes position_ids and rotates outside GroupQueryAttention (the bfloat16 variant).</summary>
    public static bool RotaryOutsideAttention(SyntheticModelSpec spec) => spec.Precision == BoundaryPrecision.BFloat16;

    /// <summary>seqlens_k (row sums of the mask minus one, int32) and total_sequence_length (the mask's width, int32), as the builder computes them.</summary>
    private static (string Seqlens, string Total) SequenceLengths(OnnxGraphBuilder g)
    {
        var sums = g.Node("ReduceSum", ["attention_mask", g.Int64Constant([1], 1)], OnnxAttribute.Integer("keepdims", 0));
        var seqlens = g.Node("Cast", [g.Node("Sub", [sums, g.Int64Constant([1])])], OnnxAttribute.Integer("to", (long)OnnxDataType.Int32));
        var total = g.Node("Gather", [g.Node("Shape", ["attention_mask"]), g.Int64Constant([1])], OnnxAttribute.Integer("axis", 0));
        return (seqlens, g.Node("Cast", [total], OnnxAttribute.Integer("to", (long)OnnxDataType.Int32)));
    }

    /// <summary>cos_cache and sin_cache [context, head_size / 2], of the attention's type.</summary>
    private static (string Cos, string Sin) RotaryCaches(OnnxGraphBuilder g, SyntheticModelSpec spec, string prefix)
    {
        var (cos, sin) = LlamaReference.RotaryCache(spec);
        long[] dims = [spec.ContextLength, spec.HeadSize / 2];
        if (spec.Precision == BoundaryPrecision.Float16)
        {
            return (g.RawInitializer($"{prefix}cos_cache", OnnxDataType.Float16, HalfBytes(cos), dims), g.RawInitializer($"{prefix}sin_cache", OnnxDataType.Float16, HalfBytes(sin), dims));
        }

        return (g.Initializer($"{prefix}cos_cache", cos, dims), g.Initializer($"{prefix}sin_cache", sin, dims));
    }

    /// <summary>
    /// The builder's LongRoPE selection: Greater(Gather(Shape(attention_mask), 1), switch) picks the long caches, else
    /// the short ones. The builder selects with an If over two constant subgraphs; Where selects the same tensors.
    /// The switch is a Constant node holding a 0-D int64 tensor, as the builder writes its constants.
    /// </summary>
    private static (string Cos, string Sin) LongRopeCaches(OnnxGraphBuilder g, SyntheticModelSpec spec, int limit, string shortCos, string shortSin)
    {
        var (longCos, longSin) = RotaryCaches(g, spec with { RopeTheta = spec.RopeTheta * 16 }, "long_");
        var width = g.Node("Gather", [g.Node("Shape", ["attention_mask"]), g.Int64Constant([1])], OnnxAttribute.Integer("axis", 0));
        var wide = g.Node("Greater", [width, g.Node("Constant", [], OnnxAttribute.Scalar("value", limit))]);
        return (g.Node("Where", [wide, longCos, shortCos]), g.Node("Where", [wide, longSin, shortSin]));
    }

    /// <summary>
    /// GroupQueryAttention over the packed QKV. Float16: the attention itself runs in float16 on a shared buffer.
    /// BFloat16: float32 attention between Casts of the cache (the CPU has no bfloat16 attention).
    /// </summary>
    private static string Attention(OnnxGraphBuilder g, SyntheticModelSpec spec, int layer, string qkv, string seqlens, string total, string cos, string sin)
    {
        string pastKey = $"past_key_values.{layer}.key", pastValue = $"past_key_values.{layer}.value";
        string presentKey = $"present.{layer}.key", presentValue = $"present.{layer}.value";
        var attributes = new[]
        {
            OnnxAttribute.Integer("num_heads", spec.Heads),
            OnnxAttribute.Integer("kv_num_heads", spec.KvHeads),
            OnnxAttribute.Real("scale", 1f / MathF.Sqrt(spec.HeadSize)),
            OnnxAttribute.Integer("local_window_size", LlamaReference.IsWindowed(spec, layer) ? spec.SlidingWindow!.Value : -1),
            OnnxAttribute.Integer("do_rotary", 1),
            OnnxAttribute.Integer("rotary_interleaved", 0),
        };
        switch (spec.Precision)
        {
            case BoundaryPrecision.Float16:
                var half = g.Node("Cast", [qkv], OnnxAttribute.Integer("to", (long)OnnxDataType.Float16));
                var outputHalf = g.NodeInDomain(Microsoft, "GroupQueryAttention", [half, string.Empty, string.Empty, pastKey, pastValue, seqlens, total, cos, sin], [$"attn_{layer}", presentKey, presentValue], attributes)[0];
                return g.Node("Cast", [outputHalf], OnnxAttribute.Integer("to", (long)OnnxDataType.Float));
            case BoundaryPrecision.BFloat16:
                return Float32AttentionOverBFloat16Cache(g, spec, layer, qkv, seqlens, total, cos, sin, attributes);
            default:
                return g.NodeInDomain(Microsoft, "GroupQueryAttention", [qkv, string.Empty, string.Empty, pastKey, pastValue, seqlens, total, cos, sin], [$"attn_{layer}", presentKey, presentValue], attributes)[0];
        }
    }

    /// <summary>
    /// Splits the packed QKV, rotates queries and keys with RotaryEmbedding at position_ids, rounds keys and values to
    /// bfloat16 (what the cache will hold), and attends in float32 over the cache cast up; the present is cast back.
    /// </summary>
    private static string Float32AttentionOverBFloat16Cache(OnnxGraphBuilder g, SyntheticModelSpec spec, int layer, string qkv, string seqlens, string total, string cos, string sin, OnnxAttribute[] attributes)
    {
        var kv = spec.KvHeads * spec.HeadSize;
        var parts = g.NodeWithOutputs("Split", [qkv, g.Int64Constant([spec.HiddenSize, kv, kv], 3)], [$"q_{layer}", $"k_{layer}", $"v_{layer}"], OnnxAttribute.Integer("axis", -1));
        var q = g.NodeInDomain(Microsoft, "RotaryEmbedding", [parts[0], "position_ids", cos, sin], [$"q_rot_{layer}"], OnnxAttribute.Integer("num_heads", spec.Heads), OnnxAttribute.Integer("interleaved", 0))[0];
        var k = g.NodeInDomain(Microsoft, "RotaryEmbedding", [parts[1], "position_ids", cos, sin], [$"k_rot_{layer}"], OnnxAttribute.Integer("num_heads", spec.KvHeads), OnnxAttribute.Integer("interleaved", 0))[0];
        string RoundTrip(string x) => g.Node("Cast", [g.Node("Cast", [x], OnnxAttribute.Integer("to", (long)OnnxDataType.BFloat16))], OnnxAttribute.Integer("to", (long)OnnxDataType.Float));
        var pastKey = g.Node("Cast", [$"past_key_values.{layer}.key"], OnnxAttribute.Integer("to", (long)OnnxDataType.Float));
        var pastValue = g.Node("Cast", [$"past_key_values.{layer}.value"], OnnxAttribute.Integer("to", (long)OnnxDataType.Float));
        var noRotary = attributes.Select(a => a.Name == "do_rotary" ? OnnxAttribute.Integer("do_rotary", 0) : a).ToArray();
        var outputs = g.NodeInDomain(
            Microsoft, "GroupQueryAttention", [q, RoundTrip(k), RoundTrip(parts[2]), pastKey, pastValue, seqlens, total],
            [$"attn_{layer}", $"present32_{layer}_k", $"present32_{layer}_v"], noRotary);
        g.NodeWithOutputs("Cast", [outputs[1]], [$"present.{layer}.key"], OnnxAttribute.Integer("to", (long)OnnxDataType.BFloat16));
        g.NodeWithOutputs("Cast", [outputs[2]], [$"present.{layer}.value"], OnnxAttribute.Integer("to", (long)OnnxDataType.BFloat16));
        return outputs[0];
    }

    /// <summary>SkipSimplifiedLayerNormalization: output 0 is the normalised sum, output 3 the sum itself (the next residual).</summary>
    private static string[] SkipNorm(OnnxGraphBuilder g, string id, string input, string skip, string gamma, bool keepResidual)
    {
        string[] outputs = keepResidual ? [$"norm_{id}", string.Empty, string.Empty, $"residual_{id}"] : [$"norm_{id}"];
        return g.NodeInDomain(Microsoft, "SkipSimplifiedLayerNormalization", [input, skip, gamma], outputs, OnnxAttribute.Real("epsilon", LlamaReference.RmsEpsilon));
    }

    /// <summary>x @ W: a float MatMul, or MatMulNBits over the weight's 4-bit codes.</summary>
    private static string Linear(OnnxGraphBuilder g, LlamaWeights weights, string x, float[] weight, int inputs, int outputs, string name)
    {
        if (!weights.Quantised.TryGetValue(weight, out var blocks))
        {
            return g.Node("MatMul", [x, g.Initializer($"{name}.MatMul.weight", weight, inputs, outputs)]);
        }

        var codes = g.RawInitializer($"{name}.MatMul.weight_Q4G32", OnnxDataType.UInt8, blocks.Codes, outputs, blocks.Blocks, Int4Blocks.BlockSize / 2);
        var scales = g.Initializer($"{name}.MatMul.weight_scales", blocks.Scales, (long)outputs * blocks.Blocks);
        return g.NodeInDomain(
            Microsoft, "MatMulNBits", [x, codes, scales], [$"{name.Replace('.', '_')}_out"],
            OnnxAttribute.Integer("K", inputs), OnnxAttribute.Integer("N", outputs), OnnxAttribute.Integer("bits", 4),
            OnnxAttribute.Integer("block_size", Int4Blocks.BlockSize), OnnxAttribute.Integer("accuracy_level", weights.Spec.Int4AccuracyLevel))[0];
    }

    private static byte[] HalfBytes(float[] values)
    {
        var halves = values.Select(v => (Half)v).ToArray();
        return MemoryMarshal.AsBytes(halves.AsSpan()).ToArray();
    }
}
