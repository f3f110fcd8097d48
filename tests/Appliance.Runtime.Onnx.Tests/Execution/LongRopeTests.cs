using Appliance.Engine;
using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.OnnxFormat;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>
/// A LongRoPE export (the model builder's Phi-3 128k, Phi-3.5, Phi-4-mini) picks its rotary cache by the attention
/// mask's width. Run alone by onnxruntime-genai, a prompt longer than the switch uses the long cache for every
/// position, and a shorter one switches when its output crosses it. Our engine chunks prompts and batches rows of
/// both sides: its tokens must still be the ones onnxruntime-genai gives each request alone.
/// </summary>
[Collection(LongRopeModelCollection.Name)]
public sealed class LongRopeTests(LongRopeModelFixture model)
{
    private const int NewTokens = 16;
    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = NewTokens, IgnoreEos = true };

    // Lengths 3, 9, 15, 18 (short; all but the first cross the switch while answering) and 24, 30, 33, 39 (long).
    private static int[][] Prompts => EngineCorrectnessTests.Prompts;

    [Fact]
    public void The_switch_is_read_from_the_graph()
    {
        var graph = OnnxGraphSignature.Read(Path.Combine(model.Folder, "model.onnx"));
        Assert.Equal(LongRopeModelFixture.Switch, Assert.Single(graph.WidthThresholds, t => t.Key == "attention_mask").Value);

        using var runner = model.CreateRunner();
        Assert.Equal(LongRopeModelFixture.Switch, runner.Info.WidthSwitchLength);
    }

    [Fact]
    public async Task Chunked_and_batched_requests_on_both_sides_of_the_switch_match_onnxruntime_genai_alone()
    {
        var expected = Prompts.Select(p => GenAiReference.Generate(model.Folder, [p], NewTokens)[0]).ToArray();

        // Chunks of 16 prompt tokens: every long prompt's first chunk is narrower than the switch.
        using var engine = model.CreateEngine(new SchedulerOptions { PrefillTokenBudget = 16 });
        var ours = await Task.WhenAll(Prompts.Select((p, i) => engine.Submit(new GenerationRequest($"r{i}", p, Greedy)).CollectAsync()));

        for (var i = 0; i < Prompts.Length; i++)
        {
            Assert.True(expected[i].Distinct().Count() > 4, "the reference output should vary, or the comparison proves little");
            Assert.Equal(expected[i], ours[i].TokenIds);
        }

        Assert.True(engine.SplitSteps > 0, "the batch held rows on both sides of the switch: some steps ran in two");
    }

    [Fact]
    public async Task Drafts_verified_across_the_switch_give_the_tokens_of_plain_decoding()
    {
        var prompt = Prompts[3]; // 18 tokens: the first drafts verified run over positions 18 to 22, across the switch at 20
        var expected = GenAiReference.Generate(model.Folder, [prompt], NewTokens)[0];

        using var engine = new GenerationEngine(
            model.CreateRunner(),
            Gpt2Tokenizer.Instance,
            new SchedulerOptions { SpeculativeTokens = 4, DraftProposer = new KnownContinuationDrafter(prompt.Length, expected, wrongEvery: 7) });
        var ours = await engine.Submit(new GenerationRequest("drafted", prompt, Greedy)).CollectAsync();

        Assert.Equal(expected, ours.TokenIds);
    }

    [Fact]
    public void A_drafts_run_whose_second_piece_fails_leaves_the_sequence_as_it_was()
    {
        var prompt = Prompts[3]; // 18 tokens; drafts at positions 18 to 22 cross the switch at 20
        int[] drafts = [7, 8, 9, 10, 11];
        using var reference = model.CreateRunner();
        reference.Execute([new RunnerSequence(1, prompt, 0)]);
        var expected = reference.Execute([new RunnerSequence(1, drafts, prompt.Length) { LogitsPositions = drafts.Length }]).ToArray();

        using var runner = model.CreateRunner();
        runner.Execute([new RunnerSequence(1, prompt, 0)]);
        var runs = 0;
        runner.BeforeSessionRun = () =>
        {
            if (++runs == 2)
            {
                throw new InvalidOperationException("the long piece fails");
            }
        };
        var failure = Assert.Throws<InvalidOperationException>(() => runner.Execute([new RunnerSequence(1, drafts, prompt.Length) { LogitsPositions = drafts.Length }]));
        Assert.Equal("the long piece fails", failure.Message);
        Assert.Equal(2, runs); // the short piece (positions 18 and 19) ran and was written before the long one failed

        // The engine decodes on from the same place after a failed drafts run: the cache must hold the prompt only.
        runner.BeforeSessionRun = null;
        var actual = runner.Execute([new RunnerSequence(1, drafts, prompt.Length) { LogitsPositions = drafts.Length }]).ToArray();
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], actual[i], 4);
        }
    }

    [Fact]
    public async Task The_prefix_cache_never_gives_a_short_prompt_the_keys_of_a_long_one()
    {
        var longPrompt = Prompts[7]; // 39 tokens: its keys come from the long cache
        var shortPrompt = longPrompt[..17];
        var otherLongPrompt = longPrompt[..30];
        var expectedShort = GenAiReference.Generate(model.Folder, [shortPrompt], NewTokens)[0];
        var expectedOtherLong = GenAiReference.Generate(model.Folder, [otherLongPrompt], NewTokens)[0];

        using var engine = new GenerationEngine(model.CreateRunner(prefixCacheTokens: 128, prefixBlockTokens: 4), Gpt2Tokenizer.Instance, new SchedulerOptions());
        await engine.Submit(new GenerationRequest("long", longPrompt, Greedy)).CollectAsync();
        var shortResult = await engine.Submit(new GenerationRequest("short", shortPrompt, Greedy)).CollectAsync();
        var otherLongResult = await engine.Submit(new GenerationRequest("other-long", otherLongPrompt, Greedy)).CollectAsync();

        Assert.Equal(0, shortResult.Usage.CachedPromptTokens);
        Assert.Equal(expectedShort, shortResult.TokenIds);
        Assert.True(otherLongResult.Usage.CachedPromptTokens >= 24, $"a long prompt reuses another long prompt's blocks ({otherLongResult.Usage.CachedPromptTokens} cached)");
        Assert.Equal(expectedOtherLong, otherLongResult.TokenIds);
    }
}
