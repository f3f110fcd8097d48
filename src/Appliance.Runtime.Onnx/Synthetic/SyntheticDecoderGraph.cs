using Appliance.Runtime.Onnx.OnnxFormat;

namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>
/// Writes a GPT-style decoder in the common export layout: inputs input_ids, attention_mask, position_ids,
/// past_key_values.{i}.key/.value; outputs logits, present.{i}.key/.value. The concatenating layout expresses
/// grouped-query attention with standard operators (broadcasting MatMuls over [batch, kv_heads, group, seq, head]);
/// the shared-buffer layout uses ONNX Runtime's GroupQueryAttention contrib operator, as the model builder does.
/// </summary>
internal static class SyntheticDecoderGraph
{
    public const int OpsetVersion = 17;
    private const float MaskedScore = -1e9f;

    public static void Write(SyntheticWeights weights, Stream destination)
    {
        var spec = weights.Spec;
        var g = new OnnxGraphBuilder("synthetic_decoder");
        DeclareInputsAndOutputs(g, spec);

        var shared = spec.Layout == KvCacheLayout.SharedBuffer;
        string[] attentionInputs = shared ? SequenceLengths(g) : [AttentionMask(g)];
        var tokens = g.Node("Gather", [g.Initializer("wte", weights.TokenEmbedding, spec.VocabularySize, spec.HiddenSize), "input_ids"]);
        var positions = g.Node("Gather", [g.Initializer("wpe", weights.PositionEmbedding, spec.ContextLength, spec.HiddenSize), "position_ids"]);
        var hidden = g.Node("Add", [tokens, positions]);
        for (var i = 0; i < spec.Layers; i++)
        {
            hidden = Layer(g, spec, weights.Layers[i], i, hidden, attentionInputs, shared);
        }

        var normed = LayerNorm(g, hidden, g.Initializer("ln_f.scale", weights.FinalNormScale, spec.HiddenSize), g.Initializer("ln_f.bias", weights.FinalNormBias, spec.HiddenSize));
        // Tied head: ORT folds the transpose of the constant embedding once, at session creation.
        var head = g.Node("Transpose", ["wte"], OnnxAttribute.Integers("perm", 1, 0));
        g.NodeWithOutputs("MatMul", [normed, head], ["logits"]);
        g.WriteTo(destination, OpsetVersion, "appliance-synthetic");
    }

    private static void DeclareInputsAndOutputs(OnnxGraphBuilder g, SyntheticModelSpec spec)
    {
        g.Input("input_ids", OnnxDataType.Int64, "batch_size", "sequence_length");
        g.Input("attention_mask", OnnxDataType.Int64, "batch_size", "total_sequence_length");
        g.Input("position_ids", OnnxDataType.Int64, "batch_size", "sequence_length");
        for (var i = 0; i < spec.Layers; i++)
        {
            g.Input($"past_key_values.{i}.key", OnnxDataType.Float, "batch_size", spec.KvHeads, "past_sequence_length", spec.HeadSize);
            g.Input($"past_key_values.{i}.value", OnnxDataType.Float, "batch_size", spec.KvHeads, "past_sequence_length", spec.HeadSize);
        }

        g.Output("logits", OnnxDataType.Float, "batch_size", "sequence_length", spec.VocabularySize);
        for (var i = 0; i < spec.Layers; i++)
        {
            g.Output($"present.{i}.key", OnnxDataType.Float, "batch_size", spec.KvHeads, "total_sequence_length", spec.HeadSize);
            g.Output($"present.{i}.value", OnnxDataType.Float, "batch_size", spec.KvHeads, "total_sequence_length", spec.HeadSize);
        }
    }

    /// <summary>
    /// Boolean [batch, 1, 1, seq, total]: key j is visible to query i when the mask admits j and j is not after i
    /// (query i sits at index past + i of the total sequence).
    /// </summary>
    private static string AttentionMask(OnnxGraphBuilder g)
    {
        var one = g.Int64Constant([1]);
        var total = g.Node("Gather", [g.Node("Shape", ["attention_mask"]), g.Int64Constant([1])], OnnxAttribute.Integer("axis", 0));
        var sequence = g.Node("Gather", [g.Node("Shape", ["input_ids"]), g.Int64Constant([1])], OnnxAttribute.Integer("axis", 0));
        var past = g.Node("Sub", [total, sequence]);
        var keyIndex = g.Node("Range", [g.Int64Constant([0]), total, one]);
        var queryIndex = g.Node("Range", [past, total, one]);
        var causal = g.Node("LessOrEqual", [keyIndex, g.Node("Unsqueeze", [queryIndex, g.Int64Constant([1], 1)])]);
        var padding = g.Node("Unsqueeze", [g.Node("Cast", ["attention_mask"], OnnxAttribute.Integer("to", (long)OnnxDataType.Bool)), g.Int64Constant([1, 2, 3], 3)]);
        return g.Node("And", [causal, padding]);
    }

    /// <summary>
    /// GroupQueryAttention's seqlens_k (row sums of the mask minus one, int32) and total_sequence_length (the mask's
    /// width, int32 scalar).
    /// </summary>
    private static string[] SequenceLengths(OnnxGraphBuilder g)
    {
        var sums = g.Node("ReduceSum", ["attention_mask", g.Int64Constant([1], 1)], OnnxAttribute.Integer("keepdims", 0));
        var seqlens = g.Node("Cast", [g.Node("Sub", [sums, g.Int64Constant([1])])], OnnxAttribute.Integer("to", (long)OnnxDataType.Int32));
        var total = g.Node("Gather", [g.Node("Shape", ["attention_mask"]), g.Int64Constant([1])], OnnxAttribute.Integer("axis", 0));
        return [seqlens, g.Node("Cast", [total], OnnxAttribute.Integer("to", (long)OnnxDataType.Int32))];
    }

    private static string Layer(OnnxGraphBuilder g, SyntheticModelSpec spec, SyntheticLayerWeights w, int index, string hidden, string[] attentionInputs, bool shared)
    {
        var h = spec.HiddenSize;
        var kv = spec.KvHeads * spec.HeadSize;
        string P(string name) => $"layers.{index}.{name}";

        var x = LayerNorm(g, hidden, g.Initializer(P("ln1.scale"), w.Norm1Scale, h), g.Initializer(P("ln1.bias"), w.Norm1Bias, h));
        var q = Linear(g, x, g.Initializer(P("q.weight"), w.QueryWeight, h, h), g.Initializer(P("q.bias"), w.QueryBias, h));
        var k = Linear(g, x, g.Initializer(P("k.weight"), w.KeyWeight, h, kv), g.Initializer(P("k.bias"), w.KeyBias, kv));
        var v = Linear(g, x, g.Initializer(P("v.weight"), w.ValueWeight, h, kv), g.Initializer(P("v.bias"), w.ValueBias, kv));

        var context = shared
            ? GroupQueryAttention(g, spec, index, q, k, v, attentionInputs)
            : StandardAttention(g, spec, index, q, k, v, attentionInputs[0]);
        var attention = Linear(g, context, g.Initializer(P("o.weight"), w.OutputWeight, h, h), g.Initializer(P("o.bias"), w.OutputBias, h));
        hidden = g.Node("Add", [hidden, attention]);

        var y = LayerNorm(g, hidden, g.Initializer(P("ln2.scale"), w.Norm2Scale, h), g.Initializer(P("ln2.bias"), w.Norm2Bias, h));
        var up = Gelu(g, Linear(g, y, g.Initializer(P("up.weight"), w.UpWeight, h, spec.IntermediateSize), g.Initializer(P("up.bias"), w.UpBias, spec.IntermediateSize)));
        var down = Linear(g, up, g.Initializer(P("down.weight"), w.DownWeight, spec.IntermediateSize, h), g.Initializer(P("down.bias"), w.DownBias, h));
        return g.Node("Add", [hidden, down]);
    }

    private static string GroupQueryAttention(OnnxGraphBuilder g, SyntheticModelSpec spec, int index, string q, string k, string v, string[] lengths)
    {
        return g.NodeInDomain(
            "com.microsoft",
            "GroupQueryAttention",
            [q, k, v, $"past_key_values.{index}.key", $"past_key_values.{index}.value", lengths[0], lengths[1]],
            [$"gqa_{index}", $"present.{index}.key", $"present.{index}.value"],
            OnnxAttribute.Integer("num_heads", spec.Heads),
            OnnxAttribute.Integer("kv_num_heads", spec.KvHeads))[0];
    }

    private static string StandardAttention(OnnxGraphBuilder g, SyntheticModelSpec spec, int index, string q, string k, string v, string allowed)
    {
        var group = spec.Heads / spec.KvHeads;

        // q: [b, s, heads*d] -> [b, kv_heads, group, s, d]; k, v: [b, s, kv_heads*d] -> [b, kv_heads, s, d]
        q = g.Node("Transpose", [g.Node("Reshape", [q, g.Int64Constant([0, 0, spec.KvHeads, group, spec.HeadSize], 5)])], OnnxAttribute.Integers("perm", 0, 2, 3, 1, 4));
        k = g.Node("Transpose", [g.Node("Reshape", [k, g.Int64Constant([0, 0, spec.KvHeads, spec.HeadSize], 4)])], OnnxAttribute.Integers("perm", 0, 2, 1, 3));
        v = g.Node("Transpose", [g.Node("Reshape", [v, g.Int64Constant([0, 0, spec.KvHeads, spec.HeadSize], 4)])], OnnxAttribute.Integers("perm", 0, 2, 1, 3));
        var keys = g.NodeWithOutputs("Concat", [$"past_key_values.{index}.key", k], [$"present.{index}.key"], OnnxAttribute.Integer("axis", 2))[0];
        var values = g.NodeWithOutputs("Concat", [$"past_key_values.{index}.value", v], [$"present.{index}.value"], OnnxAttribute.Integer("axis", 2))[0];

        var axisGroup = g.Int64Constant([2], 1);
        var keysT = g.Node("Unsqueeze", [g.Node("Transpose", [keys], OnnxAttribute.Integers("perm", 0, 1, 3, 2)), axisGroup]);
        var scores = g.Node("Mul", [g.Node("MatMul", [q, keysT]), g.FloatConstant(1f / MathF.Sqrt(spec.HeadSize))]);
        scores = g.Node("Where", [allowed, scores, g.FloatConstant(MaskedScore)]);
        var probabilities = g.Node("Softmax", [scores], OnnxAttribute.Integer("axis", -1));
        var context = g.Node("MatMul", [probabilities, g.Node("Unsqueeze", [values, axisGroup])]);
        return g.Node("Reshape", [g.Node("Transpose", [context], OnnxAttribute.Integers("perm", 0, 3, 1, 2, 4)), g.Int64Constant([0, 0, -1], 3)]);
    }

    private static string Linear(OnnxGraphBuilder g, string x, string weight, string bias) =>
        g.Node("Add", [g.Node("MatMul", [x, weight]), bias]);

    private static string LayerNorm(OnnxGraphBuilder g, string x, string scale, string bias) =>
        g.Node("LayerNormalization", [x, scale, bias], OnnxAttribute.Integer("axis", -1), OnnxAttribute.Real("epsilon", SyntheticReference.LayerNormEpsilon));

    /// <summary>GELU, tanh approximation (GPT-2's "gelu_new"): 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))).</summary>
    private static string Gelu(OnnxGraphBuilder g, string x)
    {
        var cube = g.Node("Mul", [g.Node("Mul", [x, x]), x]);
        var inner = g.Node("Add", [x, g.Node("Mul", [cube, g.FloatConstant(0.044715f)])]);
        var tanh = g.Node("Tanh", [g.Node("Mul", [inner, g.FloatConstant(SyntheticReference.GeluScale)])]);
        return g.Node("Mul", [g.Node("Mul", [x, g.FloatConstant(0.5f)]), g.Node("Add", [tanh, g.FloatConstant(1f)])]);
    }
}
