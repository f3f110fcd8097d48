using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>`appliance model verify`, as an operator runs it on a folder before declaring it (and Ansible on every node).</summary>
public sealed class ModelVerifyCommandTests : IDisposable
{
    private readonly TempFolder _root = new("model-verify");

    [Fact]
    public async Task A_builder_style_int4_export_is_described_with_its_types_and_memory()
    {
        var (synth, synthLog) = await ApplianceCli.RunAsync("model", "synth", "--out", _root.Combine("int4"), "--builder", "int4");
        Assert.True(synth == 0, synthLog);

        var (exit, output) = await ApplianceCli.RunAsync("model", "verify", _root.Combine("int4"), "--batch", "4", "--context", "128");

        Assert.True(exit == 0, output);
        Assert.Contains("OK ", output, StringComparison.Ordinal);
        Assert.Contains("llama, 2 layers", output, StringComparison.Ordinal);
        Assert.Contains("KV cache float32 (shared past/present buffer)", output, StringComparison.Ordinal);
        Assert.Contains("position_ids none", output, StringComparison.Ordinal);
        Assert.Contains("MatMulNBits", output, StringComparison.Ordinal);
        Assert.Contains("4 sequences of 128 tokens", output, StringComparison.Ordinal);
        Assert.Contains("device on auto: a CPU slot", output, StringComparison.Ordinal);

        // Planned for a GPU, the CPU export is what loading there would refuse.
        var (onCuda, cudaOutput) = await ApplianceCli.RunAsync("model", "verify", _root.Combine("int4"), "--cuda");
        Assert.Equal(1, onCuda);
        Assert.Contains("does not run on CUDA", cudaOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("OK ", cudaOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_encoder_folder_is_opened_as_the_appliance_opens_it_with_the_pooling_setting_passed_on()
    {
        string[] vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat"];
        var reranker = _root.Combine("reranker");
        new SyntheticCrossEncoder(vocabulary.Length).WriteFolder(reranker, vocabulary, maxPositions: 32);

        var (exit, output) = await ApplianceCli.RunAsync("model", "verify", reranker);

        Assert.True(exit == 0, output);
        Assert.Contains("a cross-encoder for /v1/rerank, up to 32 tokens", output, StringComparison.Ordinal);
        Assert.Contains("WordPiece, 7 pieces, lowercased", output, StringComparison.Ordinal);

        // The same weights declared as an embedding model without sentence-transformers' files: refused, unless the
        // administrator's Pooling setting (which the models role passes on) says how to pool. Its graph returns one
        // logit, not token states, so opening it then fails naming what it returns.
        File.WriteAllText(Path.Combine(reranker, "config.json"), """{"architectures": ["BertModel"], "model_type": "bert", "max_position_embeddings": 32}""");
        File.Delete(Path.Combine(reranker, ModelManifest.FileName));
        ModelManifest.Create(reranker);
        var (bare, bareOutput) = await ApplianceCli.RunAsync("model", "verify", reranker);
        Assert.Equal(1, bare);
        Assert.Contains("Models:<id>:Pooling", bareOutput, StringComparison.Ordinal);
        var (pooled, pooledOutput) = await ApplianceCli.RunAsync("model", "verify", reranker, "--pooling", "mean");
        Assert.Equal(1, pooled);
        Assert.Contains("token states", pooledOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_long_rope_switch_is_named_and_a_chat_template_loading_would_refuse_fails_verification()
    {
        var folder = _root.Combine("longrope");
        SyntheticModelFolder.Write(SyntheticModelSpec.TinyLlama with { LongRopeSwitch = 20 }, folder);
        var (exit, output) = await ApplianceCli.RunAsync("model", "verify", folder);
        Assert.True(exit == 0, output);
        Assert.Contains("rotary cache switches at 20 positions", output, StringComparison.Ordinal);

        var config = Path.Combine(folder, "tokenizer_config.json");
        var broken = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(config))!;
        broken["chat_template"] = "{% for message in messages %}{{ message.content }"; // never closed
        File.WriteAllText(config, broken.ToJsonString());
        ModelManifest.Create(folder);

        var (refused, refusal) = await ApplianceCli.RunAsync("model", "verify", folder);
        Assert.Equal(1, refused);
        Assert.Contains("chat template cannot be used", refusal, StringComparison.Ordinal);

        // A built-in template in the model's settings replaces the folder's: loading would not read it, nor does verify.
        var (replaced, replacedOutput) = await ApplianceCli.RunAsync("model", "verify", folder, "--chat-template", "chatml");
        Assert.True(replaced == 0, replacedOutput);
    }

    [Fact]
    public async Task A_folder_the_runner_cannot_drive_fails_verification_naming_the_tensor()
    {
        var folder = _root.Combine("int8");
        SyntheticModelFolder.Write(SyntheticModelSpec.TinyLlama with { VocabularySize = 300, EosTokenId = 299 }, folder);
        OnnxModelEdits.RetypeInput(Path.Combine(folder, SyntheticModelFolder.ModelFileName), "past_key_values.1.value", 3);
        ModelManifest.Create(folder);

        var (exit, output) = await ApplianceCli.RunAsync("model", "verify", folder);

        Assert.Equal(1, exit);
        Assert.Contains("FAILED", output, StringComparison.Ordinal);
        Assert.Contains("'past_key_values.1.value' is int8", output, StringComparison.Ordinal);
    }

    public void Dispose() => _root.Dispose();
}
