using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>A model folder's own session_options: honoured where they are the model's business, named where not.</summary>
public sealed class SessionSettingsTests
{
    [Fact]
    public void The_builders_cuda_options_pass_on_and_cuda_graphs_are_named_as_not_used()
    {
        var options = new DecoderSessionOptions(
            new Dictionary<string, string> { ["log_id"] = "onnxruntime-genai" },
            [("cuda", new Dictionary<string, string> { ["enable_cuda_graph"] = "1", ["enable_skip_layer_norm_strict_mode"] = "1", ["gpu_mem_limit"] = "1" })]);

        var settings = SessionSettings.From(options, "/models/m");
        var cuda = settings.CudaProviderOptions(new Dictionary<string, string> { ["device_id"] = "2" });

        Assert.Equal("1", cuda["enable_skip_layer_norm_strict_mode"]);
        Assert.Equal("2", cuda["device_id"]);
        Assert.False(cuda.ContainsKey("enable_cuda_graph"));
        Assert.False(cuda.ContainsKey("gpu_mem_limit"));
        Assert.Contains(settings.Ignored, i => i.StartsWith("cuda.enable_cuda_graph:", StringComparison.Ordinal));
        Assert.Contains(settings.Ignored, i => i.StartsWith("cuda.gpu_mem_limit:", StringComparison.Ordinal));
        Assert.DoesNotContain(settings.Ignored, i => i.StartsWith("log_id", StringComparison.Ordinal));
    }

    [Fact]
    public void A_synthetic_export_written_without_tf32_asks_the_cuda_provider_for_none()
    {
        using var root = new Appliance.Tests.Common.TempFolder("tf32");
        Appliance.Runtime.Onnx.Synthetic.SyntheticModelFolder.Write(Appliance.Runtime.Onnx.Synthetic.SyntheticModelSpec.TinyLlama with { CudaTf32 = false }, root.Path);

        var options = GenAiConfig.Load(Path.Combine(root.Path, "genai_config.json")).Decoder.SessionOptions;
        var cuda = SessionSettings.From(options, root.Path).CudaProviderOptions(new Dictionary<string, string>());

        Assert.Equal("0", cuda["use_tf32"]);
    }

    [Fact]
    public void Graph_and_memory_options_are_honoured_and_unknown_scalars_become_session_entries()
    {
        var options = new DecoderSessionOptions(
            new Dictionary<string, string>
            {
                ["enable_cpu_mem_arena"] = "false",
                ["graph_optimization_level"] = "ORT_ENABLE_EXTENDED",
                ["session.disable_prepacking"] = "1",
                ["intra_op_num_threads"] = "64",
            },
            [("dml", new Dictionary<string, string>())]);

        var settings = SessionSettings.From(options, "/models/m");
        using var applied = settings.Apply(new Microsoft.ML.OnnxRuntime.SessionOptions(), new Dictionary<string, string>());

        Assert.False(applied.EnableCpuMemArena);
        Assert.Equal(Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, applied.GraphOptimizationLevel);
        Assert.Equal("1", settings.ConfigEntries["session.disable_prepacking"]);
        Assert.Contains(settings.Ignored, i => i.StartsWith("intra_op_num_threads:", StringComparison.Ordinal));
        Assert.Contains(settings.Ignored, i => i.StartsWith("provider_options.dml:", StringComparison.Ordinal));
    }

    [Fact]
    public void Onnxruntime_genais_own_option_names_map_to_session_entries_and_unknown_ones_are_named()
    {
        var options = new DecoderSessionOptions(
            new Dictionary<string, string> { ["disable_cpu_ep_fallback"] = "true", ["use_env_allocators"] = "false", ["speed"] = "fast", ["ep_context_enable"] = "1" },
            [])
        {
            ConfigEntries = new Dictionary<string, string> { ["session.intra_op.allow_spinning"] = "0" },
        };

        var settings = SessionSettings.From(options, "/models/m");

        Assert.Equal("1", settings.ConfigEntries["session.disable_cpu_ep_fallback"]);
        Assert.Equal("0", settings.ConfigEntries["session.use_env_allocators"]);
        Assert.Equal("0", settings.ConfigEntries["session.intra_op.allow_spinning"]);
        Assert.False(settings.ConfigEntries.ContainsKey("speed"));
        Assert.Contains(settings.Ignored, i => i.StartsWith("speed:", StringComparison.Ordinal));
        Assert.Contains(settings.Ignored, i => i.StartsWith("ep_context_enable:", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("custom_ops_library", "libevil.so", "native code")]
    [InlineData("graph_optimization_level", "FAST", "ORT_DISABLE_ALL")]
    [InlineData("enable_mem_pattern", "maybe", "true or false")]
    public void Options_the_appliance_cannot_honour_safely_refuse_the_model(string key, string value, string named)
    {
        var options = new DecoderSessionOptions(new Dictionary<string, string> { [key] = value }, []);

        var error = Assert.Throws<ModelFolderException>(() => SessionSettings.From(options, "/models/m"));

        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.Contains("/models/m", error.Message, StringComparison.Ordinal);
    }
}
