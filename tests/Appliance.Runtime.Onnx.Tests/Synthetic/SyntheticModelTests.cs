using Appliance.Engine;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Synthetic;

public abstract class SyntheticModelTests(TinyModelFixture model)
{
    [Fact]
    public void Onnx_logits_match_the_reference_forward_pass()
    {
        int[] prompt = [464, 2068, 7586, 21831, 18045, 625, 262];
        using var runner = model.CreateRunner();

        var onnx = runner.Execute([new RunnerSequence(1, prompt, 0)]).ToArray();
        var reference = new SyntheticReference(SyntheticWeights.Create(model.Spec)).Feed(prompt);

        Assert.Equal(reference.Length, onnx.Length);
        var worst = reference.Zip(onnx, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst < 1e-3f, $"largest logit difference {worst}");
    }

    [Fact]
    public void Onnx_logits_match_the_reference_after_decode_steps()
    {
        int[] prompt = [15496, 11, 995];
        using var runner = model.CreateRunner();
        var reference = new SyntheticReference(SyntheticWeights.Create(model.Spec));
        var expected = reference.Feed(prompt);
        var actual = runner.Execute([new RunnerSequence(7, prompt, 0)]).ToArray();
        for (var step = 0; step < 5; step++)
        {
            var worst = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
            Assert.True(worst < 1e-3f, $"step {step}: largest logit difference {worst}");
            var next = Array.IndexOf(expected, expected.Max());
            expected = reference.Feed([next]);
            actual = runner.Execute([new RunnerSequence(7, new[] { next }, prompt.Length + step)]).ToArray();
        }
    }

    [Fact]
    public void The_folder_declares_its_kv_layout_and_the_graph_uses_it()
    {
        var shared = model.Spec.Layout == KvCacheLayout.SharedBuffer;
        Assert.Equal(shared, Appliance.Runtime.Onnx.Models.ModelFolder.Open(model.Folder).Config.Search.PastPresentShareBuffer);
        var graph = System.Text.Encoding.Latin1.GetString(File.ReadAllBytes(Path.Combine(model.Folder, SyntheticModelFolder.ModelFileName)));
        Assert.Equal(shared, graph.Contains("GroupQueryAttention", StringComparison.Ordinal));
        Assert.Equal(shared, graph.Contains("com.microsoft", StringComparison.Ordinal));
    }

    [Fact]
    public void The_same_spec_writes_a_byte_identical_model()
    {
        using var a = new TempFolder("same-spec-a");
        using var b = new TempFolder("same-spec-b");
        var spec = SyntheticModelSpec.Tiny with { VocabularySize = 300, EosTokenId = 299, HiddenSize = 32 };
        var first = SyntheticModelFolder.Write(spec, a.Path);
        var second = SyntheticModelFolder.Write(spec, b.Path);
        Assert.Equal(first.Digest, second.Digest);

        var otherSeed = SyntheticModelFolder.Write(spec with { Seed = 2 }, b.Path);
        Assert.NotEqual(first.Digest, otherSeed.Digest);
    }
}

[Collection(ConcatModelCollection.Name)]
public sealed class ConcatSyntheticModelTests(ConcatModelFixture model) : SyntheticModelTests(model);

[Collection(SharedBufferModelCollection.Name)]
public sealed class SharedBufferSyntheticModelTests(SharedBufferModelFixture model) : SyntheticModelTests(model);
