using Appliance.Engine.Requests;
using Appliance.Engine.Sampling;

namespace Appliance.Engine.Tests.Sampling;

public sealed class TokenSamplerTests
{
    private static readonly float[] Logits = [.. Enumerable.Range(0, 100).Select(i => i / 10f)]; // token 99 most likely

    [Fact]
    public void Greedy_picks_the_largest_logit()
    {
        var (token, _) = Sample(new SamplingParams { Temperature = 0 });
        Assert.Equal(99, token);
    }

    [Fact]
    public void Top_k_only_ever_picks_among_the_k_most_likely()
    {
        var picked = Draw(new SamplingParams { Temperature = 2f, TopK = 3 }, 500);
        Assert.Subset(new HashSet<int> { 97, 98, 99 }, picked);
        Assert.Equal(3, picked.Count);
    }

    [Fact]
    public void Top_p_keeps_the_smallest_set_reaching_the_mass()
    {
        // Probabilities about 0.5, 0.3, 0.2 and a negligible tail.
        float[] logits = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.2f), -30f];
        var picked = Draw(new SamplingParams { Temperature = 1f, TopP = 0.75f }, 400, logits);
        Assert.Equal(new HashSet<int> { 0, 1 }, picked);
    }

    [Fact]
    public void Min_p_drops_tokens_far_below_the_most_likely()
    {
        float[] logits = [0f, MathF.Log(0.5f), MathF.Log(0.05f)];
        var picked = Draw(new SamplingParams { Temperature = 1f, MinP = 0.1f }, 400, logits);
        Assert.Equal(new HashSet<int> { 0, 1 }, picked);
    }

    [Fact]
    public void The_same_seed_gives_the_same_tokens_and_another_seed_other_tokens()
    {
        var parameters = new SamplingParams { Temperature = 1.5f, Seed = 42 };
        var first = Sequence(parameters, 42);
        Assert.Equal(first, Sequence(parameters, 42));
        Assert.NotEqual(first, Sequence(parameters, 43));
    }

    [Fact]
    public void Frequency_and_presence_penalties_push_repeated_tokens_down()
    {
        float[] logits = [1f, 0.9f];
        var sampler = new TokenSampler(2);
        var state = new SamplingState(new SamplingParams { Temperature = 0, FrequencyPenalty = 0.2f }, [], 1);
        Assert.Equal(0, sampler.Sample(logits, state).Token);
        Assert.Equal(1, sampler.Sample(logits, state).Token); // token 0 now at 0.8

        var presence = new SamplingState(new SamplingParams { Temperature = 0, PresencePenalty = 0.5f }, [], 1);
        Assert.Equal(0, sampler.Sample(logits, presence).Token);
        Assert.Equal(1, sampler.Sample(logits, presence).Token);
    }

    [Fact]
    public void Repetition_penalty_covers_prompt_tokens()
    {
        float[] logits = [1f, 0.9f];
        var state = new SamplingState(new SamplingParams { Temperature = 0, RepetitionPenalty = 1.5f }, [0], 1);
        Assert.Equal(1, new TokenSampler(2).Sample(logits, state).Token); // 1 / 1.5 < 0.9
    }

    [Fact]
    public void Logprobs_are_log_softmax_of_the_raw_logits()
    {
        float[] logits = [0f, MathF.Log(3f)];
        var state = new SamplingState(new SamplingParams { Temperature = 0, Logprobs = true, TopLogprobs = 2 }, [], 1);
        var (token, logprob) = new TokenSampler(2).Sample(logits, state);

        Assert.Equal(1, token);
        Assert.NotNull(logprob);
        Assert.Equal(MathF.Log(0.75f), logprob.Logprob, 5);
        Assert.Equal([1, 0], logprob.TopAlternatives.Select(a => a.TokenId));
        Assert.Equal(MathF.Log(0.25f), logprob.TopAlternatives[1].Logprob, 5);
    }

    [Theory]
    [InlineData(-0.1f, 1f, 16, "temperature")]
    [InlineData(1f, 0f, 16, "top_p")]
    [InlineData(1f, 1f, -1, "max_tokens")]
    public void Invalid_parameters_are_named(float temperature, float topP, int maxTokens, string expected)
    {
        var problem = new SamplingParams { Temperature = temperature, TopP = topP, MaxTokens = maxTokens }.Validate();
        Assert.NotNull(problem);
        Assert.Contains(expected, problem, StringComparison.Ordinal);
    }

    private static (int Token, TokenLogprob? Logprob) Sample(SamplingParams parameters) =>
        new TokenSampler(Logits.Length).Sample(Logits, new SamplingState(parameters, [], 1));

    private static HashSet<int> Draw(SamplingParams parameters, int times, float[]? logits = null)
    {
        logits ??= Logits;
        var sampler = new TokenSampler(logits.Length);
        var state = new SamplingState(parameters, [], 7);
        return [.. Enumerable.Range(0, times).Select(_ => sampler.Sample(logits, state).Token)];
    }

    private static List<int> Sequence(SamplingParams parameters, long seed)
    {
        var sampler = new TokenSampler(Logits.Length);
        var state = new SamplingState(parameters, [], seed);
        return [.. Enumerable.Range(0, 20).Select(_ => sampler.Sample(Logits, state).Token)];
    }
}
