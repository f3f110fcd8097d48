using Appliance.Engine.Requests;
using Appliance.Engine.Scheduling;
using Appliance.Engine.Speculation;
using Appliance.Tests.Common;

namespace Appliance.Engine.Tests.Scheduling;

/// <summary>
/// The engine's side of prompt-lookup speculative decoding, on the counting model (next token = last + 1): drafts
/// the model agrees with are kept, several tokens per run, with the output unchanged; rejected drafts cost a pause.
/// </summary>
public sealed class SpeculativeDecodingEngineTests
{
    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = 20, IgnoreEos = true };

    [Fact]
    public void Prompt_lookup_proposes_what_followed_the_latest_earlier_occurrence_of_the_last_tokens()
    {
        var drafts = new int[4];

        Assert.Equal(4, PromptLookup.Propose([1, 2, 3, 9, 9, 1, 2, 3, 4, 5, 7, 2, 3], 3, 2, drafts));
        Assert.Equal([4, 5, 7, 2], drafts); // the bigram [2, 3] last occurred before 4, 5, 7, 2

        Assert.Equal(3, PromptLookup.Propose([9, 5, 6, 8, 5, 6], 3, 2, drafts)); // only as far as the text goes
        Assert.Equal([8, 5, 6], drafts[..3]);
        Assert.Equal(0, PromptLookup.Propose([1, 2, 3, 4], 3, 2, drafts));
        Assert.Equal(0, PromptLookup.Propose([7], 3, 2, drafts));
    }

    [Fact]
    public async Task Drafts_the_model_agrees_with_yield_several_tokens_per_run_and_the_same_output()
    {
        int[] prompt = [.. Enumerable.Range(1, 10), 1, 2, 3, 4, 5]; // counting on from 5 repeats 6..10 of the prompt
        var (plain, plainRuns) = await Generate(prompt, Greedy, speculativeTokens: 0);
        var (speculative, speculativeRuns, counters) = await GenerateWithCounters(prompt, Greedy, speculativeTokens: 4);

        Assert.Equal(plain.TokenIds, speculative.TokenIds);
        Assert.Equal(Enumerable.Range(6, 20), speculative.TokenIds);
        Assert.True(counters.Accepted >= 4, $"{counters.Accepted} of {counters.Drafted} drafts kept");
        Assert.True(speculativeRuns < plainRuns, $"{speculativeRuns} runs with drafts, {plainRuns} without");
    }

    [Fact]
    public async Task A_token_limit_inside_the_kept_drafts_ends_the_request_exactly_there()
    {
        int[] prompt = [.. Enumerable.Range(1, 10), 1, 2, 3, 4, 5];
        var (result, _, _) = await GenerateWithCounters(prompt, Greedy with { MaxTokens = 3 }, speculativeTokens: 4);

        Assert.Equal([6, 7, 8], result.TokenIds);
        Assert.Equal(FinishReason.Length, result.FinishReason);
        Assert.Equal(3, result.Usage.CompletionTokens);
    }

    [Fact]
    public async Task Rejected_drafts_change_nothing_and_pause_drafting()
    {
        // Each 10n, 10n+1 of the prompt was followed by 99: the model (counting) never agrees.
        int[] prompt = [.. Enumerable.Range(1, 6).SelectMany(n => new[] { 10 * n, (10 * n) + 1, 99 }), 9];
        var sampling = Greedy with { MaxTokens = 55 };
        var (plain, _) = await Generate(prompt, sampling, speculativeTokens: 0);
        var (speculative, _, counters) = await GenerateWithCounters(prompt, sampling, speculativeTokens: 4);

        Assert.Equal(plain.TokenIds, speculative.TokenIds);
        Assert.Equal(0, counters.Accepted);
        // Six chances (after 11, 21, ..., 61), 4 drafted tokens each; drafting pauses after each miss (1, 2, 4, 8, 16
        // steps) and looks only every third step while nothing matches, so some chances are passed over.
        Assert.InRange(counters.Drafted, 4, 20);
    }

    [Fact]
    public async Task A_runner_that_cannot_drop_positions_decodes_without_drafts()
    {
        int[] prompt = [.. Enumerable.Range(1, 10), 1, 2, 3, 4, 5];
        using var runner = new CountingRunner(contextLength: 128) { SupportsRollback = false };
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { SpeculativeTokens = 4 });

        var result = await engine.Submit(new GenerationRequest("r", prompt, Greedy)).CollectAsync();

        Assert.Equal(Enumerable.Range(6, 20), result.TokenIds);
        Assert.Equal((0L, 0L), engine.SpeculationCounters);
    }

    private static async Task<(GenerationResult Result, int Runs)> Generate(int[] prompt, SamplingParams sampling, int speculativeTokens)
    {
        var (result, runs, _) = await GenerateWithCounters(prompt, sampling, speculativeTokens);
        return (result, runs);
    }

    private static async Task<(GenerationResult Result, int Runs, (long Drafted, long Accepted) Counters)> GenerateWithCounters(int[] prompt, SamplingParams sampling, int speculativeTokens)
    {
        using var runner = new CountingRunner(contextLength: 128);
        using var engine = new GenerationEngine(runner, new ByteTokenizer(), new SchedulerOptions { SpeculativeTokens = speculativeTokens });
        var result = await engine.Submit(new GenerationRequest("r", prompt, sampling)).CollectAsync();
        return (result, runner.Batches.Count, engine.SpeculationCounters);
    }
}
