using Appliance.Engine.Requests;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>
/// Scoring a prompt on real models (a legacy completion's echo with logprobs): a prompt made of another prompt and the
/// tokens greedy decoding chose after it scores those tokens as decoding did, though it is computed in chunks of several
/// positions with a past (what builder-style GroupQueryAttention allows a row that runs alone).
/// </summary>
public abstract class PromptScoringModelTests(TinyModelFixture model)
{
    private static int[] Prompt(int length, int seed) => [.. Enumerable.Range(0, length).Select(j => ((seed * 7919) + (j * 104729)) % 50000)];

    [Fact]
    public async Task A_scored_prompt_gives_the_generated_tokens_the_log_probabilities_decoding_reported()
    {
        // 83 rows of logits a run (16 MiB of a 50,257 vocabulary): the 206 tokens below are scored in 3 chunks.
        using var engine = model.CreateEngine();
        var prompt = Prompt(200, 5);
        var generated = await engine.Submit(new GenerationRequest("g", prompt, new SamplingParams { Temperature = 0, MaxTokens = 6, Logprobs = true, TopLogprobs = 3, IgnoreEos = true })).CollectAsync();

        IReadOnlyList<TokenLogprob>? scores = null;
        await foreach (var delta in engine.Submit(new GenerationRequest("s", [.. prompt, .. generated.TokenIds], new SamplingParams { Temperature = 0, MaxTokens = 0, TopLogprobs = 3 }) { PromptLogprobs = true }))
        {
            scores ??= delta.PromptLogprobs;
        }

        Assert.NotNull(scores);
        Assert.Equal(prompt.Length + generated.TokenIds.Count - 1, scores.Count);
        Assert.Equal([.. prompt[1..], .. generated.TokenIds], scores.Select(s => s.TokenId));
        for (var i = 0; i < generated.TokenIds.Count; i++)
        {
            var decoded = generated.Logprobs[i];
            var scored = scores[prompt.Length - 1 + i];
            Assert.True(Math.Abs(decoded.Logprob - scored.Logprob) <= 1e-3f * Math.Max(1, Math.Abs(decoded.Logprob)), $"token {i}: {decoded.Logprob} decoded, {scored.Logprob} scored");
            Assert.Equal(decoded.TopAlternatives.Select(a => a.TokenId), scored.TopAlternatives.Select(a => a.TokenId));
            Assert.Equal(scored.TopAlternatives[0].Logprob, scored.Logprob, 3); // greedy: each chose the likeliest
        }
    }
}

[Collection(ConcatModelCollection.Name)]
public sealed class ConcatPromptScoringTests(ConcatModelFixture model) : PromptScoringModelTests(model);

[Collection(LlamaModelCollection.Name)]
public sealed class LlamaPromptScoringTests(LlamaModelFixture model) : PromptScoringModelTests(model);

[Collection(Float16ModelCollection.Name)]
public sealed class Float16PromptScoringTests(Float16ModelFixture model) : PromptScoringModelTests(model);
