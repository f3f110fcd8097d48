using System.Text.Json;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.OnnxFormat;

namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>
/// A small cross-encoder in the layout optimum exports a BertForSequenceClassification: inputs input_ids,
/// attention_mask and token_type_ids, output logits [batch, 1]. Its graph: word and token-type embeddings, the mean
/// over the tokens the mask admits, tanh, one linear unit; deterministic weights. <see cref="Logit"/> computes the same in
/// plain C#, so tests check what the appliance sends the model (pairs, token types, padding, cuts) score for score.
/// </summary>
public sealed class SyntheticCrossEncoder
{
    public const int Hidden = 8;
    private const int OpsetVersion = 17;

    private readonly float[] _words;
    private readonly float[] _types;
    private readonly float[] _head;
    private readonly float _bias;

    public SyntheticCrossEncoder(int vocabularySize, ulong seed = 11)
    {
        var random = new SplitMix64(seed);
        VocabularySize = vocabularySize;
        _words = random.NextUniformArray((long)vocabularySize * Hidden, 1f);
        _types = random.NextUniformArray(2 * Hidden, 1f);
        _head = random.NextUniformArray(Hidden, 2f);
        _bias = random.NextUniformArray(1, 0.5f)[0];
    }

    public int VocabularySize { get; }

    /// <summary>
    /// Writes the folder: model.onnx, the vocabulary as vocab.txt, config.json (one label, the position table's length)
    /// and tokenizer_config.json (uncased), with manifest.json.
    /// </summary>
    public void WriteFolder(string folder, IReadOnlyList<string> vocabulary, int maxPositions = 512)
    {
        if (vocabulary.Count != VocabularySize)
        {
            throw new ArgumentException($"the vocabulary has {vocabulary.Count} pieces, the model {VocabularySize}");
        }

        Directory.CreateDirectory(folder);
        WriteModel(Path.Combine(folder, "model.onnx"));

        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), vocabulary);
        File.WriteAllText(Path.Combine(folder, "config.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["architectures"] = new[] { "BertForSequenceClassification" },
            ["model_type"] = "bert",
            ["id2label"] = new Dictionary<string, string> { ["0"] = "LABEL_0" },
            ["max_position_embeddings"] = maxPositions,
            ["vocab_size"] = VocabularySize,
        }));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"do_lower_case": true, "model_max_length": 512}""");
        ModelManifest.Create(folder);
    }

    /// <summary>Writes the graph alone (model.onnx), for a folder whose other files the caller writes.</summary>
    public void WriteModel(string path)
    {
        using var model = File.Create(path);
        WriteGraph(model);
    }

    /// <summary>The logit the graph computes for one row of token ids and token types.</summary>
    public float Logit(IReadOnlyList<int> ids, IReadOnlyList<int> types)
    {
        var mean = new double[Hidden];
        for (var t = 0; t < ids.Count; t++)
        {
            for (var h = 0; h < Hidden; h++)
            {
                mean[h] += _words[(ids[t] * Hidden) + h] + _types[(types[t] * Hidden) + h];
            }
        }

        var logit = (double)_bias;
        for (var h = 0; h < Hidden; h++)
        {
            logit += Math.Tanh(mean[h] / ids.Count) * _head[h];
        }

        return (float)logit;
    }

    private void WriteGraph(Stream destination)
    {
        var g = new OnnxGraphBuilder("synthetic_cross_encoder");
        g.Input("input_ids", OnnxDataType.Int64, "batch_size", "sequence_length");
        g.Input("attention_mask", OnnxDataType.Int64, "batch_size", "sequence_length");
        g.Input("token_type_ids", OnnxDataType.Int64, "batch_size", "sequence_length");
        g.Output("logits", OnnxDataType.Float, "batch_size", 1);

        var words = g.Node("Gather", [g.Initializer("word_embeddings", _words, VocabularySize, Hidden), "input_ids"]);
        var types = g.Node("Gather", [g.Initializer("token_type_embeddings", _types, 2, Hidden), "token_type_ids"]);
        var states = g.Node("Add", [words, types]); // [batch, seq, hidden]
        var mask = g.Node("Cast", ["attention_mask"], OnnxAttribute.Integer("to", (long)OnnxDataType.Float)); // [batch, seq]
        var admitted = g.Node("Mul", [states, g.Node("Unsqueeze", [mask, g.Int64Constant([2], 1)])]);
        var sum = g.Node("ReduceSum", [admitted, g.Int64Constant([1], 1)], OnnxAttribute.Integer("keepdims", 0)); // [batch, hidden]
        var count = g.Node("ReduceSum", [mask, g.Int64Constant([1], 1)], OnnxAttribute.Integer("keepdims", 1)); // [batch, 1]
        var pooled = g.Node("Tanh", [g.Node("Div", [sum, count])]);
        var projected = g.Node("MatMul", [pooled, g.Initializer("classifier.weight", _head, Hidden, 1)]);
        g.NodeWithOutputs("Add", [projected, g.Initializer("classifier.bias", [_bias], 1)], ["logits"]);
        g.WriteTo(destination, OpsetVersion, "appliance-synthetic");
    }
}
