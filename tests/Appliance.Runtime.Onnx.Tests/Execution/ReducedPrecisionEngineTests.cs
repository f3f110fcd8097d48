using Appliance.Engine;
using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Runtime.Onnx.Tokenization;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>
/// Exports whose numbers the C# reference cannot reproduce bit for bit (float16/bfloat16 boundaries, int4 weights):
/// the engine must still give every request the tokens it gets alone, batched, chunked or preempted.
/// </summary>
public abstract class ReducedPrecisionEngineTests(TinyModelFixture model)
{
    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = 16, IgnoreEos = true };

    [Fact]
    public async Task Eight_concurrent_requests_each_get_the_tokens_they_get_alone()
    {
        var prompts = EngineCorrectnessTests.Prompts;
        using var engine = model.CreateEngine();
        var alone = new List<IReadOnlyList<int>>();
        foreach (var prompt in prompts)
        {
            alone.Add((await Run(engine, prompt, Greedy)).TokenIds);
        }

        var together = await Task.WhenAll(prompts.Select(p => Run(engine, p, Greedy)));

        Assert.True(alone.SelectMany(t => t).Distinct().Count() > 20, "outputs should vary, or equality proves little");
        for (var i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(alone[i], together[i].TokenIds);
        }
    }

    [Fact]
    public async Task Requests_preempted_for_another_tenant_recompute_to_the_same_tokens()
    {
        const int FloodTokens = 60;
        var prompts = EngineCorrectnessTests.Prompts;
        var alone = new List<IReadOnlyList<int>>();
        using (var single = model.CreateEngine())
        {
            foreach (var prompt in prompts.Take(4).Append(prompts[6]))
            {
                alone.Add((await Run(single, prompt, Greedy with { MaxTokens = FloodTokens })).TokenIds);
            }
        }

        // Held a few decode steps in while the other tenant arrives, so the flood is surely decoding then, however
        // slowly a loaded machine runs.
        using var runner = new HoldingRunner(model.CreateRunner(2), HoldingRunner.AtDecodeStep(2, 4));
        using var engine = new GenerationEngine(runner, Gpt2Tokenizer.Instance, new SchedulerOptions { MaxBatchSize = 2 });
        var flood = prompts.Take(4).Select(p => engine.Submit(new GenerationRequest(Guid.NewGuid().ToString("N"), p, Greedy with { MaxTokens = FloodTokens }) { Tenant = "a" }).CollectAsync()).ToList();
        Assert.True(runner.WaitUntilHeld(TimeSpan.FromSeconds(30)), "the flood never reached its decoding");
        Assert.Equal((2, 2), (engine.RunningRequests, engine.QueuedRequests));
        var other = engine.Submit(new GenerationRequest("b", prompts[6], Greedy with { MaxTokens = FloodTokens }) { Tenant = "b" }).CollectAsync();
        runner.Resume();
        var results = await Task.WhenAll(flood.Append(other));

        Assert.True(engine.Preemptions >= 1, "no request was preempted, so recompute was not tested");
        for (var i = 0; i < results.Length; i++)
        {
            Assert.Equal(alone[i], results[i].TokenIds);
        }
    }

    private static Task<GenerationResult> Run(GenerationEngine engine, int[] prompt, SamplingParams sampling) =>
        engine.Submit(new GenerationRequest(Guid.NewGuid().ToString("N"), prompt, sampling)).CollectAsync();
}

[Collection(Float16ModelCollection.Name)]
public sealed class Float16EngineTests(Float16ModelFixture model) : ReducedPrecisionEngineTests(model);

[Collection(BFloat16ModelCollection.Name)]
public sealed class BFloat16EngineTests(BFloat16ModelFixture model) : ReducedPrecisionEngineTests(model);

[Collection(Int4ModelCollection.Name)]
public sealed class Int4EngineTests(Int4ModelFixture model) : ReducedPrecisionEngineTests(model);
