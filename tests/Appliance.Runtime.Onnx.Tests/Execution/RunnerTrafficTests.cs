using Appliance.Engine;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>
/// What crosses where while the runner works: steady decoding moves no KV bytes at all (the cache stays where the
/// model runs, past and present in place), and only one float32 row of logits per sequence reaches the host.
/// </summary>
public abstract class RunnerTrafficTests(TinyModelFixture model)
{
    [Fact]
    public void Steady_decoding_copies_no_kv_bytes_and_hands_the_host_one_logits_row_per_sequence()
    {
        using var runner = model.CreateRunner(4);
        var prompts = EngineCorrectnessTests.Prompts.Take(3).ToArray();
        var logits = runner.Execute([.. prompts.Select((p, i) => new RunnerSequence(i, p, 0))]);
        var lengths = prompts.Select(p => p.Length).ToArray();
        Step(); // the first decode step may gather the prefilled rows into place
        var settled = runner.Traffic;
        for (var step = 0; step < 20; step++)
        {
            Step();
        }

        var after = runner.Traffic;
        Assert.Equal("cpu", after.Device);
        Assert.Equal(settled.DeviceBytesCopied, after.DeviceBytesCopied);
        Assert.Equal(20L * 3 * runner.Info.VocabularySize * sizeof(float), after.HostLogitsBytes - settled.HostLogitsBytes);

        void Step()
        {
            var rows = new List<RunnerSequence>();
            for (var i = 0; i < 3; i++)
            {
                var span = logits.Span.Slice(i * runner.Info.VocabularySize, runner.Info.VocabularySize);
                var next = span.IndexOf(MaxOf(span));
                rows.Add(new RunnerSequence(i, new[] { next }, lengths[i]++));
            }

            logits = runner.Execute(rows);
        }
    }

    [Fact]
    public void A_sequence_that_leaves_costs_one_move_of_its_filled_positions_at_most()
    {
        using var runner = model.CreateRunner(4);
        var prompts = EngineCorrectnessTests.Prompts.Skip(2).Take(3).ToArray();
        runner.Execute([.. prompts.Select((p, i) => new RunnerSequence(i, p, 0))]);
        var lengths = prompts.Select(p => p.Length).ToArray();
        runner.Execute([.. Enumerable.Range(0, 3).Select(i => new RunnerSequence(i, new[] { 7 }, lengths[i]++))]);
        runner.Release(0);
        var before = runner.Traffic.DeviceBytesCopied;
        runner.Execute([.. Enumerable.Range(1, 2).Select(i => new RunnerSequence(i, new[] { 7 }, lengths[i]++))]);

        // Each remaining row's filled positions (K and V, every layer, every KV head) may move once; nothing more.
        var perToken = 2L * model.Spec.Layers * model.Spec.KvHeads * model.Spec.HeadSize * runner.Signature.KvElementSize;
        Assert.True(runner.Traffic.DeviceBytesCopied - before <= (lengths[1] + lengths[2]) * perToken, $"{runner.Traffic.DeviceBytesCopied - before} bytes moved");
    }

    private static float MaxOf(ReadOnlySpan<float> values)
    {
        var max = float.NegativeInfinity;
        foreach (var value in values)
        {
            max = Math.Max(max, value);
        }

        return max;
    }
}

[Collection(ConcatModelCollection.Name)]
public sealed class ConcatRunnerTrafficTests(ConcatModelFixture model) : RunnerTrafficTests(model);

[Collection(LlamaModelCollection.Name)]
public sealed class LlamaRunnerTrafficTests(LlamaModelFixture model) : RunnerTrafficTests(model);

[Collection(Float16ModelCollection.Name)]
public sealed class Float16RunnerTrafficTests(Float16ModelFixture model) : RunnerTrafficTests(model);

/// <summary>A long prompt with Llama 3's vocabulary never needs a [prompt, vocabulary] logits tensor.</summary>
public sealed class LargeVocabularyPrefillTests : IDisposable
{
    private const int Vocabulary = 128256;
    private readonly TempFolder _root = new("large-vocabulary");

    public LargeVocabularyPrefillTests() =>
        SyntheticModelFolder.Write(SyntheticModelSpec.TinyLlama with { VocabularySize = Vocabulary, EosTokenId = 128001, Layers = 1, ContextLength = 1100 }, _root.Path);

    [Fact]
    public void Prefilling_1024_tokens_keeps_each_runs_logits_under_32_MiB_and_hands_the_host_one_row()
    {
        int[] prompt = [.. Enumerable.Range(0, 1024).Select(i => (i * 7919) % Vocabulary)];
        using var bounded = Runner(logitsBudget: null);
        using var whole = Runner(logitsBudget: 1L << 30);

        var pieces = bounded.Execute([new RunnerSequence(1, prompt, 0)]).ToArray();
        var oneRun = whole.Execute([new RunnerSequence(1, prompt, 0)]).ToArray();

        Assert.True(bounded.Traffic.LargestLogitsBytes < 32L << 20, $"largest logits tensor {bounded.Traffic.LargestLogitsBytes} bytes");
        Assert.Equal(Vocabulary * sizeof(float), bounded.Traffic.HostLogitsBytes);
        Assert.Equal(1024L * Vocabulary * sizeof(float), whole.Traffic.LargestLogitsBytes); // the same prompt in one run
        // Running the prompt in pieces is exact up to the order of float sums: the same logits and the same winner.
        Assert.True(pieces.Zip(oneRun, (a, b) => Math.Abs(a - b)).Max() < 1e-3f);
        Assert.Equal(Array.IndexOf(oneRun, oneRun.Max()), Array.IndexOf(pieces, pieces.Max()));
    }

    private OnnxDecoderRunner Runner(long? logitsBudget) =>
        new(ModelFolder.Open(_root.Path), "large", new RunnerOptions { MaxBatchSize = 1, IntraOpThreads = 2, LogitsBudgetBytes = logitsBudget });

    public void Dispose() => _root.Dispose();
}
