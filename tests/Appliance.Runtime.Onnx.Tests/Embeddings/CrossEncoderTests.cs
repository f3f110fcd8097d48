using Appliance.Runtime.Onnx.Embeddings;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Embeddings;

/// <summary>The cross-encoder's runs: padding does not change a score, and closing it (an unload) lets running requests finish.</summary>
public sealed class CrossEncoderTests : IDisposable
{
    private static readonly string[] Vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "ran", "."];

    private readonly TempFolder _root = new("cross-encoder");

    private (CrossEncoder Encoder, SyntheticCrossEncoder Model) Open()
    {
        var model = new SyntheticCrossEncoder(Vocabulary.Length);
        model.WriteFolder(_root.Combine("model"), Vocabulary, maxPositions: 32);
        return (CrossEncoder.Open(EncoderFolder.Open(_root.Combine("model")), intraOpThreads: 1), model);
    }

    [Fact]
    public async Task Documents_of_different_lengths_in_one_run_score_as_each_would_alone()
    {
        var (encoder, model) = Open();
        using var _ = encoder;
        string[] documents = ["cat", "the dog ran on the mat .", "sat"];

        var together = await encoder.ScoreAsync("the cat", documents, int.MaxValue);

        for (var i = 0; i < documents.Length; i++)
        {
            var alone = await encoder.ScoreAsync("the cat", [documents[i]], int.MaxValue);
            Assert.Equal(alone.Scores[0], together.Scores[i], 6);
        }

        // [CLS] the cat [SEP] cat [SEP]: ids 2 5 6 3 6 3, types 0 0 0 0 1 1.
        Assert.Equal(1 / (1 + Math.Exp(-model.Logit([2, 5, 6, 3, 6, 3], [0, 0, 0, 0, 1, 1]))), together.Scores[0], 5);
        Assert.Equal(6 + 12 + 6, together.PromptTokens); // the long pair: four of the query, seven pieces, one [SEP]
    }

    [Fact]
    public async Task Closing_it_while_a_request_runs_lets_that_request_finish_and_refuses_the_next()
    {
        var (encoder, _) = Open();
        var documents = Enumerable.Repeat("the cat sat on the mat", CrossEncoder.PairsPerRun * 3).ToArray();
        var runs = 0;

        var scored = await encoder.ScoreAsync("cat", documents, int.MaxValue, CancellationToken.None, _ =>
        {
            if (Interlocked.Increment(ref runs) == 1)
            {
                encoder.Dispose(); // an unload arriving after the first of three runs
            }
        });

        Assert.Equal((3, documents.Length), (runs, scored.Scores.Count));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => encoder.ScoreAsync("cat", ["mat"], int.MaxValue));
    }

    public void Dispose() => _root.Dispose();
}

/// <summary>How inputs are grouped into model runs: similar lengths together, fewer rows as they grow, a long one alone.</summary>
public sealed class EncoderRunTests
{
    [Fact]
    public void Short_inputs_fill_runs_up_to_the_row_limit_in_order_of_length()
    {
        int[] lengths = [.. Enumerable.Range(0, 40).Select(i => 8 + (i % 5))];

        var runs = EncoderSession.Runs(lengths, maxRows: 32);

        Assert.Equal([32, 8], runs.Select(r => r.Length));
        Assert.Equal(Enumerable.Range(0, 40), runs.SelectMany(r => r).Order());
        Assert.True(runs[0].Max(i => lengths[i]) <= runs[1].Min(i => lengths[i]));
    }

    [Fact]
    public void Long_inputs_take_fewer_rows_a_run_and_the_longest_run_alone()
    {
        int[] lengths = [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 8192, 8192];

        var runs = EncoderSession.Runs(lengths, maxRows: 32);

        // 8 inputs of 1,000 tokens stay within 32 x 512 x 512; a ninth would not. Each 8,192-token input runs alone.
        Assert.Equal([8, 2, 1, 1], runs.Select(r => r.Length));
        Assert.All(runs, run => Assert.True(run.Length == 1 || (long)run.Length * lengths[run[^1]] * lengths[run[^1]] <= EncoderSession.AttentionBudget));
    }
}
