using System.Text.Json.Nodes;
using Appliance.Engine.Pool;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.OnnxFormat;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>The memory a replica is planned with: the KV cache as the runner really allocates it, and real model shapes placed on real GPU sizes.</summary>
public sealed class MemoryPlanTests : IDisposable
{
    private const long Gb = 1_000_000_000L;
    private static readonly PoolDevice H100 = new(DeviceKind.Cuda, 0, "NVIDIA H100 80GB HBM3", 80L * Gb, 0);
    private static readonly PoolDevice H200 = new(DeviceKind.Cuda, 0, "NVIDIA H200", 141L * Gb, 0);

    private readonly TempFolder _root = new("memory-plan");

    [Theory]
    [InlineData("concat")]
    [InlineData("llama")]
    [InlineData("fp16")]
    public void The_planned_kv_cache_is_the_one_the_runner_allocates(string variant)
    {
        using TinyModelFixture model = variant switch
        {
            "concat" => new ConcatModelFixture(),
            "llama" => new LlamaModelFixture(),
            _ => new Float16ModelFixture(),
        };
        using var runner = model.CreateRunner(maxBatchSize: 3);
        var folder = ModelFolder.Open(model.Folder);

        var plan = MemoryPlan.For(folder, DecoderSignature.FromFile(folder.DecoderPath, folder.Config.Decoder, folder.Path), 3, null, cuda: false);

        Assert.Equal(runner.KvCacheBytes, plan.KvCacheBytes);
        Assert.Equal(folder.Config.ContextLength, plan.ContextLength);
        // On the CPU the device is the host; the logits rows are a scored prompt's chunk: 83 rows of 50,257 in 16 MiB.
        Assert.Equal(plan.DeviceBytes + (83L * folder.Config.VocabularySize * sizeof(float)), plan.HostBytes);
    }

    [Theory]
    [InlineData("llama-3.1-8b fp16", 16_060_000_000L, 32, 8, 128)]
    [InlineData("llama-3.1-8b int4", 5_730_000_000L, 32, 8, 128)]
    [InlineData("qwen2.5-7b fp16", 15_230_000_000L, 28, 4, 128)]
    [InlineData("phi-3.5-mini fp16", 7_640_000_000L, 32, 32, 96)]
    public void A_7_to_8B_model_with_a_128k_context_is_placed_on_an_80_and_a_141_GB_gpu_with_the_defaults(string name, long weights, int layers, int kvHeads, int headSize)
    {
        var folder = BuilderFolder(name, weights, layers, kvHeads, headSize, context: 131072);
        var signature = DecoderSignature.FromFile(folder.DecoderPath, folder.Config.Decoder, folder.Path);
        Assert.Equal(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16, signature.KvType);

        foreach (var gpu in new[] { H100, H200 })
        {
            var plan = MemoryPlan.ForDevices(folder, signature, maxBatchSize: 8, contextLength: null, logitsBudgetBytes: null, replicas: 1, [(gpu, gpu.MemoryFreeBytes)], out var note);

            Assert.True(plan.DeviceBytes <= gpu.MemoryTotalBytes * MemoryPlan.DeviceShare, $"{name} on {gpu.Name}: {plan.DeviceBytes} bytes");
            Assert.True(plan.ContextLength >= 16384, $"{name} on {gpu.Name}: context {plan.ContextLength}");
            Assert.True(gpu != H100 || note is not null, "the full context cannot fit on 80 GB");
            Assert.Equal(0, plan.ContextLength % 256);
            // Where 8 sequences of 131,072 tokens do not fit, the context is capped and the cap is said.
            Assert.Equal(plan.ContextLength < 131072, note is not null);
            Assert.True(note is null || note.Contains("context capped from 131072", StringComparison.Ordinal), note);
            // KV: K and V, every layer, batch 8, KV heads, context, head size, 2 bytes; one row of swap scratch; the
            // prefix cache's pool of one context for every layer.
            var row = (long)kvHeads * plan.ContextLength * headSize * 2;
            Assert.Equal((2L * layers * 8 * row) + row + (2L * layers * row), plan.KvCacheBytes);
            Assert.Equal(32L * 128256 * sizeof(float), plan.HostBytes); // only logits rows live on the host: a scored chunk's 32 in 16 MiB
            var placed = Placer.Place([new ReplicaDemand(name, 1, plan.DeviceBytes)], [gpu], Placer.Strategy("pack"));
            Assert.Equal(gpu.Id, Assert.Single(placed).DeviceId);
        }
    }

    [Fact]
    public void A_context_the_operator_set_is_kept_and_placement_says_when_it_does_not_fit()
    {
        var folder = BuilderFolder("llama-3.1-8b", 16_060_000_000L, 32, 8, 128, context: 131072);
        var signature = DecoderSignature.FromFile(folder.DecoderPath, folder.Config.Decoder, folder.Path);

        var plan = MemoryPlan.ForDevices(folder, signature, 8, contextLength: 131072, null, 1, [(H100, H100.MemoryFreeBytes)], out var note);

        Assert.Null(note);
        Assert.Equal(131072, plan.ContextLength);
        var error = Assert.Throws<PlacementException>(() => Placer.Place([new ReplicaDemand("llama", 1, plan.DeviceBytes)], [H100], Placer.Strategy("pack")));
        Assert.Contains("llama", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_model_that_fits_at_its_own_context_keeps_it()
    {
        var folder = BuilderFolder("phi-3-mini-4k", 7_640_000_000L, 32, 32, 96, context: 4096);
        var signature = DecoderSignature.FromFile(folder.DecoderPath, folder.Config.Decoder, folder.Path);

        var plan = MemoryPlan.ForDevices(folder, signature, 8, null, null, 1, [(H100, H100.MemoryFreeBytes)], out var note);

        Assert.Null(note);
        Assert.Equal(4096, plan.ContextLength);
    }

    [Fact]
    public void A_second_model_on_the_same_gpu_is_capped_to_what_the_first_left()
    {
        var folder = BuilderFolder("llama-3.1-8b", 16_060_000_000L, 32, 8, 128, context: 131072);
        var signature = DecoderSignature.FromFile(folder.DecoderPath, folder.Config.Decoder, folder.Path);
        // The first model's operator chose its context; the second takes what is left.
        var first = MemoryPlan.ForDevices(folder, signature, 8, 32768, null, 1, [(H200, H200.MemoryFreeBytes)], out _);
        var left = H200.MemoryFreeBytes - first.DeviceBytes;

        var second = MemoryPlan.ForDevices(folder, signature, 8, null, null, 1, [(H200, left)], out var note);

        Assert.NotNull(note);
        Assert.InRange(second.ContextLength, 16384, 131071);
        Assert.True(second.DeviceBytes <= left * MemoryPlan.DeviceShare);
        var placed = Placer.Place(
            [new ReplicaDemand("first", 1, first.DeviceBytes), new ReplicaDemand("second", 1, second.DeviceBytes)], [H200], Placer.Strategy("pack"));
        Assert.Equal(2, placed.Count);
    }

    [Fact]
    public void Two_replicas_are_planned_for_the_second_roomiest_gpu_and_gpus_win_over_a_large_cpu_slot()
    {
        var folder = BuilderFolder("llama-3.1-8b", 16_060_000_000L, 32, 8, 128, context: 131072);
        var signature = DecoderSignature.FromFile(folder.DecoderPath, folder.Config.Decoder, folder.Path);
        var cpu = new PoolDevice(DeviceKind.Cpu, 0, "cpu", 1000L * Gb, 0);
        var h100 = H100 with { Index = 1 };

        var plan = MemoryPlan.ForDevices(folder, signature, 8, null, null, replicas: 2, [(cpu, cpu.MemoryFreeBytes), (H200, H200.MemoryFreeBytes), (h100, h100.MemoryFreeBytes)], out _);

        Assert.True(plan.DeviceBytes <= h100.MemoryTotalBytes * MemoryPlan.DeviceShare, "both replicas must fit, the second on the 80 GB GPU");
        Assert.Equal(32L * 128256 * sizeof(float), plan.HostBytes); // planned for CUDA, not for the CPU slot
    }

    public void Dispose() => _root.Dispose();

    /// <summary>
    /// A folder shaped as the model builder writes a CUDA float16 export (genai_config.json, and a model.onnx that
    /// declares the real inputs and outputs), with the manifest's sizes of the real weights.
    /// </summary>
    private ModelFolder BuilderFolder(string name, long weightBytes, int layers, int kvHeads, int headSize, int context)
    {
        var path = Path.Combine(_root.Path, name.Replace(' ', '-'));
        Directory.CreateDirectory(path);
        var g = new OnnxGraphBuilder("signature_only");
        g.Input("input_ids", OnnxDataType.Int64, "batch_size", "sequence_length");
        g.Input("attention_mask", OnnxDataType.Int64, "batch_size", "total_sequence_length");
        g.Output("logits", OnnxDataType.Float16, "batch_size", "sequence_length", 128256);
        for (var i = 0; i < layers; i++)
        {
            g.Input($"past_key_values.{i}.key", OnnxDataType.Float16, "batch_size", kvHeads, "past_sequence_length", headSize);
            g.Input($"past_key_values.{i}.value", OnnxDataType.Float16, "batch_size", kvHeads, "past_sequence_length", headSize);
            g.Output($"present.{i}.key", OnnxDataType.Float16, "batch_size", kvHeads, "total_sequence_length", headSize);
            g.Output($"present.{i}.value", OnnxDataType.Float16, "batch_size", kvHeads, "total_sequence_length", headSize);
        }

        using (var stream = File.Create(Path.Combine(path, "model.onnx")))
        {
            g.WriteTo(stream, 17, "test");
        }

        var config = new JsonObject
        {
            ["model"] = new JsonObject
            {
                ["context_length"] = context, ["eos_token_id"] = 128009, ["type"] = "llama", ["vocab_size"] = 128256,
                ["decoder"] = new JsonObject
                {
                    ["filename"] = "model.onnx", ["head_size"] = headSize, ["hidden_size"] = 4096, ["num_attention_heads"] = 32,
                    ["num_hidden_layers"] = layers, ["num_key_value_heads"] = kvHeads,
                    ["inputs"] = new JsonObject(), ["outputs"] = new JsonObject(),
                },
            },
            ["search"] = new JsonObject { ["past_present_share_buffer"] = true },
        };
        File.WriteAllText(Path.Combine(path, GenAiConfig.FileName), config.ToJsonString());
        var manifest = new ModelManifest(1, [new ManifestFile("model.onnx", 400_000, "0"), new ManifestFile("model.onnx.data", weightBytes, "0")]);
        return new ModelFolder(path, GenAiConfig.Load(Path.Combine(path, GenAiConfig.FileName)), manifest);
    }
}
