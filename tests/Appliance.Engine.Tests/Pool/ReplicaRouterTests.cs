using Appliance.Engine.Pool;
using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Tests.Common;

namespace Appliance.Engine.Tests.Pool;

/// <summary>Routing between replicas of one model, each a real engine over a counting model.</summary>
public sealed class ReplicaRouterTests
{
    private static readonly SamplingParams FiveTokens = new() { Temperature = 0, MaxTokens = 5 };

    [Fact]
    public async Task Requests_spread_over_replicas_by_their_load()
    {
        using var first = new CountingRunner(maxBatchSize: 2);
        using var second = new CountingRunner(maxBatchSize: 2);
        first.Running.Reset();
        second.Running.Reset();
        using var engineA = new GenerationEngine(first, new ByteTokenizer(), new SchedulerOptions { MaxBatchSize = 2 });
        using var engineB = new GenerationEngine(second, new ByteTokenizer(), new SchedulerOptions { MaxBatchSize = 2 });
        var router = new ReplicaRouter([new Replica(0, "cpu0", engineA), new Replica(1, "cpu1", engineB)]);

        var streams = new List<GenerationStream>();
        int loadA, loadB;
        try
        {
            for (var i = 0; i < 8; i++)
            {
                streams.Add(router.Submit(new GenerationRequest($"r{i}", [65], FiveTokens)));
                // Let the engine thread take the request in, so the next routing decision sees the load.
                SpinWait.SpinUntil(() => engineA.QueuedRequests + engineA.RunningRequests + engineB.QueuedRequests + engineB.RunningRequests == i + 1, TimeSpan.FromSeconds(2));
            }

            (loadA, loadB) = (engineA.QueuedRequests + engineA.RunningRequests, engineB.QueuedRequests + engineB.RunningRequests);
        }
        finally
        {
            first.Running.Set();
            second.Running.Set();
        }

        Assert.Equal((4, 4), (loadA, loadB));
        var results = await Task.WhenAll(streams.Select(s => s.CollectAsync()));
        Assert.All(results, r => Assert.Equal(5, r.TokenIds.Count));
    }

    [Fact]
    public async Task A_request_whose_replica_fails_before_any_output_is_retried_on_another()
    {
        using var failing = new CountingRunner { FailNext = new InvalidOperationException("CUDA error: an illegal memory access") };
        using var healthy = new CountingRunner();
        using var broken = new GenerationEngine(failing, new ByteTokenizer(), new SchedulerOptions());
        using var working = new GenerationEngine(healthy, new ByteTokenizer(), new SchedulerOptions());
        // The failing replica ranks first (index 0, both idle).
        var router = new ReplicaRouter([new Replica(0, "gpu0", broken), new Replica(1, "gpu1", working)]);

        var result = await router.Submit(new GenerationRequest("r", [65, 66], FiveTokens)).CollectAsync();

        Assert.Equal([67, 68, 69, 70, 71], result.TokenIds);
        Assert.Single(failing.Batches);
        Assert.False(broken.Healthy);
        Assert.Equal(1, router.Ranked(new HashSet<int>()).First().Index); // the failed replica is out of the way
    }

    [Fact]
    public async Task A_request_that_already_streamed_fails_with_the_replica_error()
    {
        using var failing = new CountingRunner { PauseAfterRuns = 2 };
        using var healthy = new CountingRunner();
        using var broken = new GenerationEngine(failing, new ByteTokenizer(), new SchedulerOptions());
        using var working = new GenerationEngine(healthy, new ByteTokenizer(), new SchedulerOptions());
        var router = new ReplicaRouter([new Replica(0, "gpu0", broken), new Replica(1, "gpu1", working)]);

        var stream = router.Submit(new GenerationRequest("r", [65], FiveTokens with { MaxTokens = 20 }));
        SpinWait.SpinUntil(() => failing.Batches.Count >= 2, TimeSpan.FromSeconds(5)); // prefill and one decode step ran
        failing.FailNext = new InvalidOperationException("device lost");
        failing.PauseAfterRuns = null;
        failing.Running.Set();

        var failure = await Assert.ThrowsAsync<ModelRunException>(() => stream.CollectAsync());
        Assert.True(failure.ProducedOutput);
        Assert.Empty(healthy.Batches);
    }
}
