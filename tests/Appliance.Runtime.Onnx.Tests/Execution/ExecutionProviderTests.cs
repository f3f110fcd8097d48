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
        using var runner = new OnnxDecoderRunner(ModelFolder.Open(model.Folder), "tiny", new RunnerOptions { CudaDeviceId = 0 }, logger);

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
    public void The_product_output_carries_the_cuda_build_of_onnx_runtime()
    {
        // onnxruntime-genai or the CPU package in the same output would silently replace it.
        var native = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native");
        Assert.True(File.Exists(Path.Combine(native, "libonnxruntime_providers_cuda.so")), $"no CUDA provider in {native}");
        Assert.False(File.Exists(Path.Combine(AppContext.BaseDirectory, "Microsoft.ML.OnnxRuntimeGenAI.dll")), "onnxruntime-genai leaked into the product output");
    }
}
