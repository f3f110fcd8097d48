using Appliance.Engine;
using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Runtime.Onnx.Tokenization;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>
/// Prefix caching on a real model: KV copied out of one sequence and into another gives the logits a full prefill
/// gives, answers served from the cache equal those of an engine without one, hits are counted only within a tenant.
/// </summary>
public abstract class PrefixCacheTests(TinyModelFixture model) : IDisposable
{
    private GenerationEngine? _uncached;

    private const int Block = 16;
    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = 10, IgnoreEos = true };

    private static int[] Prompt(int length, int seed) => [.. Enumerable.Range(0, length).Select(j => ((seed * 7919) + (j * 104729)) % 50000)];

    [Fact]
    public void Blocks_saved_from_one_sequence_and_loaded_into_another_give_the_logits_of_a_full_prefill()
    {
        using var runner = model.CreateRunner(4, prefixCacheTokens: 8 * Block, prefixBlockTokens: Block);
        var store = runner.PrefixBlocks!;
        var prompt = Prompt(3 * Block + 5, 1);
        var full = runner.Execute([new RunnerSequence(1, prompt, 0)]).ToArray();
        store.SaveBlocks(1, 0, [5, 2, 7]); // any slots, in the prefix's order
        runner.Release(1);

        store.LoadBlocks(2, [5, 2, 7]);
        var rest = runner.Execute([new RunnerSequence(2, prompt.AsMemory(3 * Block), 3 * Block)]).ToArray();

        Assert.Equal(full.Length, rest.Length);
        for (var i = 0; i < full.Length; i++)
        {
            Assert.True(Math.Abs(full[i] - rest[i]) <= 1e-3f * Math.Max(1, Math.Abs(full[i])), $"logit {i}: {full[i]} vs {rest[i]}");
        }

        // Saving the middle blocks only (from a position on) lands them where asked too.
        store.SaveBlocks(2, Block, [0, 1]);
        store.LoadBlocks(3, [5, 0]);
        var again = runner.Execute([new RunnerSequence(3, prompt.AsMemory(2 * Block), 2 * Block)]).ToArray();
        Assert.Equal(full.AsSpan().IndexOf(full.Max()), again.AsSpan().IndexOf(again.Max()));
    }

    [Fact]
    public async Task A_repeated_prompt_is_served_from_the_cache_with_the_reference_tokens()
    {
        using var engine = Engine();
        var prompt = Prompt(4 * Block + 3, 2);

        var first = await Run(engine, prompt, "team");
        var second = await Run(engine, prompt, "team");

        var expected = await Uncached(prompt, Greedy.MaxTokens);
        Assert.Equal(expected, first.TokenIds);
        Assert.Equal(expected, second.TokenIds);
        Assert.Equal(0, first.Usage.CachedPromptTokens);
        Assert.Equal(4 * Block, second.Usage.CachedPromptTokens);
        Assert.Equal((2L * prompt.Length, 4L * Block), engine.PrefixCacheCounters);
        Assert.Equal(0, engine.QueuedRequests); // a hit leaves the queue like any admission (counted before its prefill runs)
    }

    [Fact]
    public async Task A_prompt_of_exactly_whole_blocks_still_runs_its_last_token()
    {
        using var engine = Engine();
        var prompt = Prompt(3 * Block, 3);
        await Run(engine, prompt, "team");

        var again = await Run(engine, prompt, "team");

        Assert.Equal(2 * Block, again.Usage.CachedPromptTokens); // the last block holds the token whose logits are needed
        Assert.Equal(await Uncached(prompt, Greedy.MaxTokens), again.TokenIds);
    }

    [Fact]
    public async Task Another_tenant_reuses_nothing_of_the_same_prompt()
    {
        using var engine = Engine();
        var prompt = Prompt(4 * Block, 4);
        await Run(engine, prompt, "team-a");

        var other = await Run(engine, prompt, "team-b");
        var same = await Run(engine, prompt, "team-a");

        Assert.Equal(0, other.Usage.CachedPromptTokens);
        Assert.Equal(3 * Block, same.Usage.CachedPromptTokens);
        Assert.Equal(await Uncached(prompt, Greedy.MaxTokens), other.TokenIds);
    }

    [Fact]
    public async Task Concurrent_requests_sharing_a_system_prompt_reuse_it_and_each_equal_their_reference()
    {
        using var engine = Engine();
        var shared = Prompt(3 * Block, 5);
        await Run(engine, [.. shared, 1, 2, 3], "team");
        var prompts = Enumerable.Range(0, 6).Select(i => shared.Concat(Prompt(4 + (i * 5), 100 + i)).ToArray()).ToList();

        var results = await Task.WhenAll(prompts.Select(p => Run(engine, p, "team")));

        for (var i = 0; i < prompts.Count; i++)
        {
            Assert.Equal(await Uncached(prompts[i], Greedy.MaxTokens), results[i].TokenIds);
            Assert.True(results[i].Usage.CachedPromptTokens >= 3 * Block, $"request {i} reused {results[i].Usage.CachedPromptTokens} tokens");
        }
    }

    [Fact]
    public async Task The_next_turn_of_a_conversation_reuses_the_previous_answer_too()
    {
        using var engine = Engine();
        var turn1 = Prompt((2 * Block) + 7, 6);
        var answer = await Run(engine, turn1, "team", Greedy with { MaxTokens = 2 * Block });
        int[] turn2 = [.. turn1, .. answer.TokenIds, .. Prompt(9, 7)];

        var next = await Run(engine, turn2, "team");

        // Everything the first request computed (its prompt and all but its last token) is there, in whole blocks.
        var computed = turn1.Length + answer.TokenIds.Count - 1;
        Assert.Equal(computed / Block * Block, next.Usage.CachedPromptTokens);
        Assert.Equal(await Uncached(turn2, Greedy.MaxTokens), next.TokenIds);
    }

    [Fact]
    public async Task A_small_pool_evicts_old_prefixes_and_answers_stay_exact()
    {
        using var engine = Engine(prefixCacheTokens: 3 * Block);
        var prompts = Enumerable.Range(0, 5).Select(i => Prompt((2 * Block) + 1, 20 + i)).ToList();
        foreach (var prompt in prompts)
        {
            await Run(engine, prompt, "team");
        }

        var recent = await Run(engine, prompts[^1], "team");
        var evicted = await Run(engine, prompts[0], "team");

        Assert.Equal(2 * Block, recent.Usage.CachedPromptTokens);
        Assert.Equal(0, evicted.Usage.CachedPromptTokens);
        Assert.Equal(await Uncached(prompts[0], Greedy.MaxTokens), evicted.TokenIds);
    }

    [Fact]
    public async Task Switched_off_it_reports_nothing_and_computes_every_prompt()
    {
        using var engine = Engine(prefixCacheTokens: 0);
        var prompt = Prompt(3 * Block, 8);
        await Run(engine, prompt, "team");

        var again = await Run(engine, prompt, "team");

        Assert.Equal(0, again.Usage.CachedPromptTokens);
        Assert.Equal((0L, 0L), engine.PrefixCacheCounters);
        Assert.Equal(0, engine.PrefixCacheCapacityTokens);
    }

    [Fact]
    public async Task A_cached_prompt_with_one_token_left_runs_beside_a_decoding_request()
    {
        using var runner = new ThrottledRunner(model.CreateRunner(8, prefixBlockTokens: Block), TimeSpan.FromMilliseconds(5));
        using var engine = new GenerationEngine(runner, Gpt2Tokenizer.Instance, new SchedulerOptions());
        var prompt = Prompt((2 * Block) + 1, 9);
        await Run(engine, [.. prompt[..(2 * Block)], 5, 6, 7], "team"); // caches the first two blocks
        var decoding = Run(engine, Prompt(20, 10), "other", Greedy with { MaxTokens = 40 });
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (engine.RunningRequests == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the first request never started");
            await Task.Delay(2);
        }

        var lastToken = await Run(engine, prompt, "team"); // one token to run after its cached 32

        Assert.Equal(2 * Block, lastToken.Usage.CachedPromptTokens);
        Assert.Equal(await Uncached(prompt, Greedy.MaxTokens), lastToken.TokenIds);
        Assert.Equal(await Uncached(Prompt(20, 10), 40), (await decoding).TokenIds);
    }

    [Fact]
    public async Task A_preempted_request_resumes_from_its_saved_blocks_and_stays_exact()
    {
        // The engine is held inside its decoding (the victim has its prompt's block and some output to save) while the
        // other tenant arrives, so the batch is full then however slowly a loaded machine runs this test.
        const int FloodTokens = 40;
        using var runner = new HoldingRunner(model.CreateRunner(2, prefixBlockTokens: Block), HoldingRunner.AtDecodeStep(2, 4));
        using var engine = new GenerationEngine(runner, Gpt2Tokenizer.Instance, new SchedulerOptions { MaxBatchSize = 2 });
        var prompts = Enumerable.Range(0, 3).Select(i => Prompt(Block + 3 + i, 40 + i)).ToList();
        var flood = prompts.Select(p => Run(engine, p, "a", Greedy with { MaxTokens = FloodTokens })).ToList();
        Assert.True(runner.WaitUntilHeld(TimeSpan.FromSeconds(30)), "the flood never reached its decoding");
        Assert.Equal(2, engine.RunningRequests);
        Assert.Equal(1, engine.QueuedRequests);

        var otherRun = Run(engine, Prompt(9, 50), "b");
        runner.Resume();
        var other = await otherRun;
        var results = await Task.WhenAll(flood);

        Assert.True(engine.Preemptions >= 1, "the other tenant's request should have preempted one of the flood");
        Assert.Equal(0, engine.QueuedRequests); // a preempted request resuming from its blocks left the queue again
        for (var i = 0; i < prompts.Count; i++)
        {
            Assert.Equal(await Uncached(prompts[i], FloodTokens), results[i].TokenIds);
        }

        Assert.Equal(await Uncached(Prompt(9, 50), Greedy.MaxTokens), other.TokenIds);
    }

    public void Dispose()
    {
        _uncached?.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>The greedy tokens an engine without a prefix cache gives (the float16 export differs from the reference).</summary>
    private async Task<IReadOnlyList<int>> Uncached(int[] prompt, int maxTokens)
    {
        _uncached ??= Engine(prefixCacheTokens: 0);
        return (await Run(_uncached, prompt, "reference", Greedy with { MaxTokens = maxTokens })).TokenIds;
    }

    private GenerationEngine Engine(int? prefixCacheTokens = null) =>
        new(model.CreateRunner(8, prefixCacheTokens: prefixCacheTokens, prefixBlockTokens: Block), Gpt2Tokenizer.Instance, new SchedulerOptions());

    private static Task<GenerationResult> Run(GenerationEngine engine, int[] prompt, string tenant, SamplingParams? sampling = null) =>
        engine.Submit(new GenerationRequest(Guid.NewGuid().ToString("N"), prompt, sampling ?? Greedy) { Tenant = tenant }).CollectAsync();
}

[Collection(ConcatModelCollection.Name)]
public sealed class ConcatPrefixCacheTests(ConcatModelFixture model) : PrefixCacheTests(model);

[Collection(SharedBufferModelCollection.Name)]
public sealed class SharedBufferPrefixCacheTests(SharedBufferModelFixture model) : PrefixCacheTests(model);

[Collection(LlamaModelCollection.Name)]
public sealed class LlamaPrefixCacheTests(LlamaModelFixture model) : PrefixCacheTests(model);

[Collection(Float16ModelCollection.Name)]
public sealed class Float16PrefixCacheTests(Float16ModelFixture model) : PrefixCacheTests(model);
