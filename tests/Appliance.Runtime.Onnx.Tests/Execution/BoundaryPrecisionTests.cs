using Appliance.Engine;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>The same builder-style model written with float32, float16 and bfloat16 KV cache and logits.</summary>
public sealed class PrecisionVariants : IDisposable
{
    private readonly TempFolder _root = new("precision");

    public PrecisionVariants()
    {
        foreach (var precision in Enum.GetValues<BoundaryPrecision>())
        {
            SyntheticModelFolder.Write(SyntheticModelSpec.TinyLlama with { Precision = precision }, Folder(precision));
        }
    }

    public string Folder(BoundaryPrecision precision) => Path.Combine(_root.Path, precision.ToString());

    public OnnxDecoderRunner Runner(BoundaryPrecision precision) =>
        new(ModelFolder.Open(Folder(precision)), precision.ToString(), new RunnerOptions { MaxBatchSize = 2, IntraOpThreads = 2 });

    public void Dispose() => _root.Dispose();
}

/// <summary>
/// A float16 or bfloat16 export answers like its float32 original: fed the same tokens, every step's logits agree
/// within the precision of the type, and wherever the float32 winner leads by more than that, it wins there too.
/// (Greedy outputs of two precisions part where two logits nearly tie: rounding makes them equal and the lower id
/// wins. That is the type's precision, not the runner's doing, so it is checked step by step.)
/// </summary>
public sealed class BoundaryPrecisionTests(PrecisionVariants models) : IClassFixture<PrecisionVariants>
{
    [Theory]
    [InlineData(BoundaryPrecision.Float16, TensorElementType.Float16, 0.05f)]
    [InlineData(BoundaryPrecision.BFloat16, TensorElementType.BFloat16, 0.25f)]
    public void A_reduced_precision_export_follows_its_float32_original_step_by_step(BoundaryPrecision precision, TensorElementType type, float tolerance)
    {
        using var original = models.Runner(BoundaryPrecision.Float32);
        using var reduced = models.Runner(precision);
        Assert.Equal(type, reduced.Signature.KvType);
        Assert.Equal(type, reduced.Signature.LogitsType);

        var decided = 0;
        foreach (var (prompt, id) in EngineCorrectnessTests.Prompts.Take(4).Select((p, i) => (p, (long)i)))
        {
            var expected = original.Execute([new RunnerSequence(id, prompt, 0)]).ToArray();
            var actual = reduced.Execute([new RunnerSequence(id, prompt, 0)]).ToArray();
            for (var step = 0; step < 24; step++)
            {
                var worst = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
                Assert.True(worst < tolerance, $"prompt {id}, step {step}: logits differ by up to {worst}");
                var ranked = Enumerable.Range(0, expected.Length).OrderByDescending(t => expected[t]).Take(2).ToArray();
                if (expected[ranked[0]] - expected[ranked[1]] > 2 * tolerance)
                {
                    Assert.Equal(ranked[0], Array.IndexOf(actual, actual.Max()));
                    decided++;
                }

                // Both continue with the float32 winner, so both see the same tokens.
                expected = original.Execute([new RunnerSequence(id, new[] { ranked[0] }, prompt.Length + step)]).ToArray();
                actual = reduced.Execute([new RunnerSequence(id, new[] { ranked[0] }, prompt.Length + step)]).ToArray();
            }

            original.Release(id);
            reduced.Release(id);
        }

        Assert.True(decided > 20, $"only {decided} steps had a clear winner; the check proves little");
    }

    [Fact]
    public void A_float16_export_runs_attention_in_place_in_its_cache()
    {
        // The past and present of a model-builder export share one buffer: nothing is copied per step.
        using var runner = models.Runner(BoundaryPrecision.Float16);
        runner.Execute([new RunnerSequence(1, EngineCorrectnessTests.Prompts[5], 0)]);
        var before = runner.Traffic;
        for (var step = 0; step < 10; step++)
        {
            runner.Execute([new RunnerSequence(1, new[] { 100 + step }, EngineCorrectnessTests.Prompts[5].Length + step)]);
        }

        Assert.Equal(before.DeviceBytesCopied, runner.Traffic.DeviceBytesCopied);
        // K+V x 2 layers x batch 2 x 2 KV heads x context x 16 x 2 bytes, one row of scratch for swapping rows, and the
        // prefix cache's pool: one context of K+V for every layer.
        var pool = 2L * 2 * 2 * runner.Info.ContextLength * 16 * 2;
        Assert.Equal((2L * 2 * 2 * 2 * runner.Info.ContextLength * 16 * 2) + (2L * runner.Info.ContextLength * 16 * 2) + pool, runner.KvCacheBytes);
    }
}
