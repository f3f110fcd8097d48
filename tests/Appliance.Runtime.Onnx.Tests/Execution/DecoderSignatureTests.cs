using Appliance.Engine;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.OnnxFormat;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>The runner takes element types from the model and refuses, at load and by name, what it cannot drive.</summary>
public sealed class DecoderSignatureTests
{
    private static readonly DecoderConfig Decoder = new(
        "model.onnx", 16, 64, 4, 2, 1,
        new DecoderInputNames("input_ids", "attention_mask", "position_ids", "past_key_values.%d.key", "past_key_values.%d.value"),
        new DecoderOutputNames("logits", "present.%d.key", "present.%d.value"));

    [Theory]
    [InlineData(TensorElementType.Float, TensorElementType.Float)]
    [InlineData(TensorElementType.Float16, TensorElementType.Float16)]
    [InlineData(TensorElementType.BFloat16, TensorElementType.Float)]
    [InlineData(TensorElementType.Float16, TensorElementType.Float)]
    public void Float32_float16_and_bfloat16_caches_and_logits_are_taken_from_the_model(TensorElementType kv, TensorElementType logits)
    {
        var signature = Resolve(Inputs(kv), Outputs(kv, logits));

        Assert.Equal((kv, logits), (signature.KvType, signature.LogitsType));
        Assert.Equal(kv == TensorElementType.Float ? 4 : 2, signature.KvElementSize);
        Assert.False(signature.HasPositionIds);
    }

    [Fact]
    public void Int32_ids_and_mask_and_a_position_input_are_recognised()
    {
        var inputs = Inputs(TensorElementType.Float);
        inputs["input_ids"] = Tensor("input_ids", TensorElementType.Int32, null, null);
        inputs["attention_mask"] = Tensor("attention_mask", TensorElementType.Int32, null, null);
        inputs["position_ids"] = Tensor("position_ids", TensorElementType.Int32, null, null);

        var signature = Resolve(inputs, Outputs(TensorElementType.Float, TensorElementType.Float));

        Assert.Equal((TensorElementType.Int32, TensorElementType.Int32, TensorElementType.Int32), (signature.IdsType, signature.MaskType, signature.PositionIdsType));
    }

    [Fact]
    public void An_int8_kv_cache_is_refused_naming_the_tensor_and_its_type()
    {
        var inputs = Inputs(TensorElementType.Float16);
        inputs["past_key_values.0.value"] = Tensor("past_key_values.0.value", TensorElementType.Int8, null, 2, null, 16);

        var error = Assert.Throws<ModelFolderException>(() => Resolve(inputs, Outputs(TensorElementType.Float16, TensorElementType.Float16)));

        Assert.Contains("'past_key_values.0.value' is int8", error.Message, StringComparison.Ordinal);
        Assert.Contains("float32, float16 or bfloat16", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Mixed_kv_types_are_refused_naming_both()
    {
        var outputs = Outputs(TensorElementType.Float16, TensorElementType.Float16);
        outputs["present.0.key"] = Tensor("present.0.key", TensorElementType.Float, null, 2, null, 16);

        var error = Assert.Throws<ModelFolderException>(() => Resolve(Inputs(TensorElementType.Float16), outputs));

        Assert.Contains("'present.0.key' is float32", error.Message, StringComparison.Ordinal);
        Assert.Contains("'past_key_values.0.key' is float16", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Integer_logits_inputs_embeds_and_wrong_head_counts_are_refused_by_name()
    {
        var outputs = Outputs(TensorElementType.Float, TensorElementType.Float);
        outputs["logits"] = Tensor("logits", TensorElementType.Int64, null, null, 300);
        Assert.Contains("output 'logits' is int64", Assert.Throws<ModelFolderException>(() => Resolve(Inputs(TensorElementType.Float), outputs)).Message, StringComparison.Ordinal);

        var embeds = Inputs(TensorElementType.Float);
        embeds.Remove("input_ids");
        embeds["inputs_embeds"] = Tensor("inputs_embeds", TensorElementType.Float, null, null, 64);
        Assert.Contains("takes 'inputs_embeds' (embeddings computed outside the decoder) instead of token ids", Assert.Throws<ModelFolderException>(() => Resolve(embeds, Outputs(TensorElementType.Float, TensorElementType.Float))).Message, StringComparison.Ordinal);

        var heads = Inputs(TensorElementType.Float);
        heads["past_key_values.0.key"] = Tensor("past_key_values.0.key", TensorElementType.Float, null, 4, null, 16);
        Assert.Contains("2 KV heads", Assert.Throws<ModelFolderException>(() => Resolve(heads, Outputs(TensorElementType.Float, TensorElementType.Float))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_input_the_runner_does_not_feed_and_a_three_dimensional_position_input_are_refused_by_name()
    {
        var merged = Inputs(TensorElementType.Float);
        merged["use_cache_branch"] = Tensor("use_cache_branch", TensorElementType.Bool, 1);
        var error = Assert.Throws<ModelFolderException>(() => Resolve(merged, Outputs(TensorElementType.Float, TensorElementType.Float)));
        Assert.Contains("input 'use_cache_branch' (bool), which the runner does not feed", error.Message, StringComparison.Ordinal);

        var rope = Inputs(TensorElementType.Float);
        rope["position_ids"] = Tensor("position_ids", TensorElementType.Int64, 3, null, null);
        Assert.Contains("'position_ids' has 3 dimensions", Assert.Throws<ModelFolderException>(() => Resolve(rope, Outputs(TensorElementType.Float, TensorElementType.Float))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_external_weights_are_named_when_the_signature_is_read()
    {
        using var folder = new TempFolder("external");
        SyntheticModelFolder.Write(SyntheticModelSpec.TinyLlama with { ExternalData = true, VocabularySize = 300, EosTokenId = 299 }, folder.Path);
        var model = ModelFolder.Open(folder.Path);
        Assert.Contains(SyntheticModelFolder.ExternalDataFileName, OnnxGraphSignature.Read(model.DecoderPath).ExternalDataFiles);
        File.Delete(Path.Combine(folder.Path, SyntheticModelFolder.ExternalDataFileName));

        var error = Assert.Throws<ModelFolderException>(() => DecoderSignature.FromFile(model.DecoderPath, model.Config.Decoder, folder.Path));

        Assert.Contains("'model.onnx.data', which is missing", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_signature_read_from_the_file_alone_equals_the_sessions()
    {
        using var folder = new TempFolder("signature");
        SyntheticModelFolder.Write(SyntheticModelSpec.TinyLlama with { Precision = BoundaryPrecision.Float16, ExternalData = true, VocabularySize = 300, EosTokenId = 299 }, folder.Path);
        var model = ModelFolder.Open(folder.Path);

        var fromFile = DecoderSignature.FromFile(model.DecoderPath, model.Config.Decoder, folder.Path);
        using var runner = new OnnxDecoderRunner(model, "sig", new RunnerOptions { MaxBatchSize = 1 });

        Assert.Equal(runner.Signature, fromFile);
        Assert.Equal(TensorElementType.Float16, fromFile.KvType);
        var graph = OnnxGraphSignature.Read(model.DecoderPath);
        Assert.True(graph.Uses("com.microsoft", "GroupQueryAttention"));
        Assert.True(graph.Uses("com.microsoft", "SkipSimplifiedLayerNormalization"));
        Assert.DoesNotContain("position_ids", graph.Inputs.Keys);
    }

    [Fact]
    public void A_model_file_with_an_unusable_kv_type_is_refused_when_the_runner_loads()
    {
        using var folder = new TempFolder("int8-kv");
        SyntheticModelFolder.Write(SyntheticModelSpec.TinyLlama with { VocabularySize = 300, EosTokenId = 299 }, folder.Path);
        // Rewrite the declared element type of one cache input in the file (FLOAT=1 -> INT8=3): the runner must
        // name it, not load, report ready and fail every request.
        OnnxModelEdits.RetypeInput(Path.Combine(folder.Path, SyntheticModelFolder.ModelFileName), "past_key_values.1.key", 3);
        ModelManifest.Create(folder.Path);

        var error = Assert.Throws<ModelFolderException>(() => new OnnxDecoderRunner(ModelFolder.Open(folder.Path), "bad", new RunnerOptions { MaxBatchSize = 1 }));

        Assert.Contains("'past_key_values.1.key' is int8", error.Message, StringComparison.Ordinal);
    }

    private static DecoderSignature Resolve(Dictionary<string, TensorSignature> inputs, Dictionary<string, TensorSignature> outputs) =>
        DecoderSignature.Resolve(inputs, outputs, Decoder, "/models/test");

    private static Dictionary<string, TensorSignature> Inputs(TensorElementType kv) => new()
    {
        ["input_ids"] = Tensor("input_ids", TensorElementType.Int64, null, null),
        ["attention_mask"] = Tensor("attention_mask", TensorElementType.Int64, null, null),
        ["past_key_values.0.key"] = Tensor("past_key_values.0.key", kv, null, 2, null, 16),
        ["past_key_values.0.value"] = Tensor("past_key_values.0.value", kv, null, 2, null, 16),
    };

    private static Dictionary<string, TensorSignature> Outputs(TensorElementType kv, TensorElementType logits) => new()
    {
        ["logits"] = Tensor("logits", logits, null, null, 300),
        ["present.0.key"] = Tensor("present.0.key", kv, null, 2, null, 16),
        ["present.0.value"] = Tensor("present.0.value", kv, null, 2, null, 16),
    };

    private static TensorSignature Tensor(string name, TensorElementType type, params long?[] dims) => new(name, type, dims);
}
