using Appliance.Runtime.Onnx.Embeddings;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.OpenAi;

/// <summary>
/// The packaged embedding model serves concurrent requests in turns, one model run at a time: a one-line request that
/// arrives while a large batch runs waits for one run, not for the whole batch.
/// </summary>
public sealed class EmbeddingTurnsTests : IDisposable
{
    private readonly TempFolder _root = new("embedding-turns");

    [Fact]
    public async Task A_request_arriving_during_a_large_batch_runs_after_one_of_its_runs_not_after_all()
    {
        using var embedder = SentenceEmbedder.Open(MiniLmPackage.Ensure(_root.Combine("minilm")));
        var large = Enumerable.Range(0, SentenceEmbedder.RowsPerRun * 10).Select(i => $"sentence number {i} of the large batch").ToArray();
        var largeRuns = 0;
        var runsBeforeSmall = -1;
        Task? small = null;

        // The small request arrives while the large one holds the model for its first run (the callback runs then). Its
        // own callback runs while it holds the model for its run: the large one's count then is how long it waited.
        var largeDone = embedder.EmbedAsync(large, CancellationToken.None, _ =>
        {
            if (Interlocked.Increment(ref largeRuns) == 1)
            {
                small = embedder.EmbedAsync(["a short question"], CancellationToken.None, _ => runsBeforeSmall = Volatile.Read(ref largeRuns));
            }
        });
        await largeDone;

        Assert.NotNull(small);
        await small;
        Assert.True(runsBeforeSmall is 1 or 2, $"the small request waited for {runsBeforeSmall} of the large one's 10 runs");
    }

    public void Dispose() => _root.Dispose();
}
