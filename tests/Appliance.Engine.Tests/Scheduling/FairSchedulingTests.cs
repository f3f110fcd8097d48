using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Tests.Common;

namespace Appliance.Engine.Tests.Scheduling;

/// <summary>Weighted fair queueing between tenants and the two priority classes, observed in the batches the model ran.</summary>
public sealed class FairSchedulingTests
{
    private static readonly SamplingParams EightTokens = new() { Temperature = 0, MaxTokens = 8 };

    [Fact]
    public async Task A_light_tenant_is_admitted_at_the_next_free_slot_while_another_floods_the_model()
    {
        using var runner = new CountingRunner(contextLength: 64, maxBatchSize: 4);
        runner.Running.Reset();
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { MaxBatchSize = 4 });
        var flood = Enumerable.Range(0, 50).Select(i => engine.Submit(Request($"a{i}", "team-a"))).ToList();
        var light = engine.Submit(Request("b", "team-b"));
        runner.Running.Set();
        await Task.WhenAll(flood.Select(s => s.CollectAsync()).Append(light.CollectAsync()));

        // Sequence ids follow submission order: the light tenant's request is number 51.
        var firstStep = FirstStepOf(runner, 51);
        // Four flood requests hold the batch for one prefill and seven decode steps; the next free slot is the light tenant's.
        Assert.True(firstStep <= 10, $"the light tenant's request first ran at step {firstStep}; first come, first served would be about 100");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_tenant_arriving_at_a_full_batch_displaces_the_flooding_tenant_only_with_preemption(bool preempt)
    {
        // The runner stops after five runs: the flood then holds every slot, decoding, when the light request arrives.
        using var runner = new CountingRunner(contextLength: 64, maxBatchSize: 4) { PauseAfterRuns = 5 };
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { MaxBatchSize = 4, PreemptForFairness = preempt });
        var forty = new SamplingParams { Temperature = 0, MaxTokens = 40 };
        var flood = Enumerable.Range(0, 12).Select(i => engine.Submit(new GenerationRequest($"a{i}", [65], forty) { Tenant = "team-a" })).ToList();
        SpinWait.SpinUntil(() => runner.Batches.Count >= 5, TimeSpan.FromSeconds(5));
        var stepsBefore = runner.Batches.Count;
        var light = engine.Submit(new GenerationRequest("b", [65], EightTokens) { Tenant = "team-b" });
        runner.PauseAfterRuns = null;
        runner.Running.Set();
        var results = await Task.WhenAll(flood.Select(s => s.CollectAsync()));
        await light.CollectAsync();

        var waited = FirstStepOf(runner, 13) - stepsBefore;
        // Every flood request still generated exactly its 40 tokens, in order, whether or not it was sent back once.
        Assert.All(results, r => Assert.Equal(Enumerable.Range(66, 40), r.TokenIds));
        if (preempt)
        {
            Assert.True(waited <= 3, $"the light tenant waited {waited} steps");
            Assert.True(engine.Preemptions >= 1);
        }
        else
        {
            Assert.True(waited > 10, $"without preemption the light tenant waits for a flood request to finish, yet waited only {waited} steps");
            Assert.Equal(0, engine.Preemptions);
        }
    }

    [Fact]
    public async Task Weights_share_admissions_between_tenants_in_proportion()
    {
        using var runner = new CountingRunner(contextLength: 64, maxBatchSize: 1);
        runner.Running.Reset();
        var options = new SchedulerOptions { MaxBatchSize = 1, TenantWeights = new Dictionary<string, double> { ["heavy"] = 3 } };
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), options);
        var streams = Enumerable.Range(0, 40).Select(i => engine.Submit(Request($"h{i}", "heavy")))
            .Concat(Enumerable.Range(0, 40).Select(i => engine.Submit(Request($"l{i}", "light"))))
            .ToList();
        runner.Running.Set();
        await Task.WhenAll(streams.Select(s => s.CollectAsync()));

        // Ids 1-40 are the heavy tenant's, 41-80 the light one's; look at the first 40 admissions.
        var order = AdmissionOrder(runner).Take(40).ToList();
        var heavy = order.Count(id => id <= 40);
        Assert.InRange(heavy, 27, 33); // weight 3 to 1: three quarters of 40
    }

    [Fact]
    public async Task Interactive_requests_go_before_batch_ones_without_starving_them()
    {
        using var runner = new CountingRunner(contextLength: 64, maxBatchSize: 1);
        runner.Running.Reset();
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { MaxBatchSize = 1, InteractivePerBatch = 3 });
        var batch = Enumerable.Range(0, 10).Select(i => engine.Submit(Request($"b{i}", "t") with { Priority = RequestPriority.Batch })).ToList();
        var interactive = Enumerable.Range(0, 10).Select(i => engine.Submit(Request($"i{i}", "t"))).ToList();
        runner.Running.Set();
        await Task.WhenAll(batch.Concat(interactive).Select(s => s.CollectAsync()));

        // Ids 1-10 are batch, 11-20 interactive. The engine may have taken the first batch request before the others arrived.
        var order = AdmissionOrder(runner).SkipWhile(id => id == 1).Take(12).ToList();
        var batchAdmitted = order.Count(id => id <= 10);
        Assert.InRange(batchAdmitted, 2, 3); // one batch admission after every three interactive ones
        Assert.True(order.Take(3).All(id => id > 10), $"interactive first: {string.Join(",", order)}");
    }

    [Fact]
    public async Task A_request_whose_expected_wait_exceeds_its_timeout_is_refused_at_once()
    {
        using var runner = new CountingRunner(contextLength: 64, maxBatchSize: 1);
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { MaxBatchSize = 1 });
        // Two completions give the engine a measured rate.
        await engine.Submit(Request("warm-1", "t")).CollectAsync();
        await engine.Submit(Request("warm-2", "t")).CollectAsync();
        runner.Running.Reset();
        var queued = Enumerable.Range(0, 20).Select(i => engine.Submit(Request($"q{i}", "t"))).ToList();

        var refused = Assert.Throws<EngineOverloadedException>(() => engine.Submit(Request("impatient", "t") with { MaxQueueWait = TimeSpan.FromTicks(1) }));
        Assert.Contains("timeout", refused.Message, StringComparison.Ordinal);
        Assert.InRange(refused.RetryAfterSeconds, 1, 60);
        var patient = engine.Submit(Request("patient", "t") with { MaxQueueWait = TimeSpan.FromHours(1) });
        runner.Running.Set();
        Assert.Equal(FinishReason.Length, (await patient.CollectAsync()).FinishReason);
        await Task.WhenAll(queued.Select(s => s.CollectAsync()));
    }

    [Fact]
    public async Task After_an_idle_spell_simultaneous_requests_that_fit_the_batch_are_all_admitted()
    {
        using var runner = new CountingRunner(contextLength: 64, maxBatchSize: 8);
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { MaxBatchSize = 8 });
        await engine.Submit(Request("warm-1", "t")).CollectAsync();
        await engine.Submit(Request("warm-2", "t")).CollectAsync();
        await Task.Delay(1500); // quiet: a rate measured up to now would have decayed to a fraction

        // Even with a deadline far below one request's service time, four requests fit eight free slots.
        var streams = Enumerable.Range(0, 4).Select(i => engine.Submit(Request($"burst-{i}", "t") with { MaxQueueWait = TimeSpan.FromTicks(1) })).ToList();

        Assert.All(await Task.WhenAll(streams.Select(s => s.CollectAsync())), result => Assert.Equal(FinishReason.Length, result.FinishReason));
    }

    [Fact]
    public async Task Fair_queue_state_is_kept_for_recent_tenants_not_for_every_tenant_ever_seen()
    {
        using var runner = new CountingRunner(contextLength: 64, maxBatchSize: 4);
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { MaxBatchSize = 4 });

        for (var i = 0; i < 1000; i++)
        {
            await engine.Submit(Request($"r{i}", $"user-{i}")).CollectAsync();
        }

        // Pruned whenever the table doubles: idle tenants behind the clock, or idle while 256 others were admitted.
        Assert.InRange(engine.TrackedTenants, 1, 600);
    }

    private static GenerationRequest Request(string id, string tenant) => new(id, [65], EightTokens) { Tenant = tenant };

    private static int FirstStepOf(CountingRunner runner, long sequenceId) =>
        runner.Batches.FindIndex(b => b.Any(r => r.SequenceId == sequenceId));

    /// <summary>Sequence ids in the order of their first run (their prefill).</summary>
    private static IEnumerable<long> AdmissionOrder(CountingRunner runner) =>
        runner.Batches.SelectMany(b => b.Where(r => r.PastLength == 0).Select(r => r.SequenceId));
}
