using Appliance.Engine;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Tests.Common;
using Microsoft.Extensions.Logging;

namespace Appliance.Runtime.Onnx.Tests.Execution;

[Collection(ConcatModelCollection.Name)]
public sealed class ExecutionProviderTests(ConcatModelFixture model)
{
    [Fact]
    public void Without_cuda_the_runner_falls_back_to_the_cpu_with_one_warning()
    {
        var logger = new ListLogger();
        using var runner = new OnnxDecoderRunner(ModelFolder.Open(model.Folder), "tiny", new RunnerOptions { CudaDeviceId = 0, CudaMemoryLimitBytes = 1L << 30 }, logger);

        var logits = runner.Execute([new RunnerSequence(1, new[] { 15496, 11 }, 0)]);
        Assert.Equal(runner.Info.VocabularySize, logits.Length);

        // On a machine with a working CUDA 13 + cuDNN 9 the first line appears instead; these test machines have none.
        var cuda = logger.Entries.Where(e => e.EventId.Id is 1100 or 1101).ToList();
        Assert.Single(cuda);
        Assert.Equal(1101, cuda[0].EventId.Id);
        Assert.Equal(LogLevel.Warning, cuda[0].Level);
        Assert.Contains("running on the CPU instead", cuda[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_runner_placed_on_a_gpu_fails_instead_of_falling_back_when_cuda_cannot_load()
    {
        var error = Assert.Throws<InvalidOperationException>(() =>
            new OnnxDecoderRunner(ModelFolder.Open(model.Folder), "tiny", new RunnerOptions { CudaDeviceId = 0, RequireCuda = true }));

        Assert.Contains("CUDA device 0 cannot run", error.Message, StringComparison.Ordinal);
        Assert.Contains("CUDA 13", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_product_output_carries_the_cuda_build_of_onnx_runtime()
    {
        // onnxruntime-genai or the CPU package in the same output would silently replace it.
        var native = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        Assert.True(File.Exists(Path.Combine(native, "libonnxruntime_providers_cuda.so")), $"no CUDA provider in {native}");
        Assert.False(File.Exists(Path.Combine(AppContext.BaseDirectory, "Microsoft.ML.OnnxRuntimeGenAI.dll")), "onnxruntime-genai leaked into the product output");
    }
}

/// <summary>What the CUDA provider is told for a replica (checked here; no machine these tests run on has a GPU).</summary>
public sealed class CudaProviderSettingsTests
{
    [Fact]
    public void The_replica_device_memory_share_and_arena_strategy_reach_the_provider_options()
    {
        var settings = CudaProviderSettings.From(new RunnerOptions { CudaDeviceId = 3, CudaMemoryLimitBytes = 40L << 30, CudaArenaExtendStrategy = "same_as_requested" });

        Assert.Equal("3", settings["device_id"]);
        Assert.Equal("42949672960", settings["gpu_mem_limit"]);
        Assert.Equal("kSameAsRequested", settings["arena_extend_strategy"]);
    }

    [Fact]
    public void Without_a_limit_the_arena_is_unbounded_and_grows_by_powers_of_two()
    {
        var settings = CudaProviderSettings.From(new RunnerOptions { CudaDeviceId = 0 });

        Assert.False(settings.ContainsKey("gpu_mem_limit"));
        Assert.Equal("kNextPowerOfTwo", settings["arena_extend_strategy"]);
    }

    [Theory]
    [InlineData(-1L, "next_power_of_two", "CudaMemoryLimitBytes")]
    [InlineData(1L, "grow_a_lot", "CudaArenaExtendStrategy")]
    public void Bad_cuda_options_are_refused_by_name(long limit, string strategy, string named)
    {
        var problem = new RunnerOptions { CudaDeviceId = 0, CudaMemoryLimitBytes = limit, CudaArenaExtendStrategy = strategy }.Validate();

        Assert.NotNull(problem);
        Assert.Contains(named, problem, StringComparison.Ordinal);
    }
}
