using Appliance.Engine.Requests;

namespace Appliance.Engine.Sampling;

/// <summary>
/// Picks the next token from a logits row: penalties, then greedy or temperature with top-k, top-p and min-p.
/// One instance per engine loop; its scratch buffers are reused across rows (not thread-safe).
/// </summary>
internal sealed class TokenSampler(int vocabularySize)
{
    private static readonly HashSet<int> NoEndTokens = [];

    private readonly float[] _adjusted = new float[vocabularySize];
    private readonly float[] _probabilities = new float[vocabularySize];
    private readonly float[] _work = new float[vocabularySize];

    /// <param name="endTokens">The tokens that end a sequence (a constraint allows them only where its output is complete).</param>
    public (int Token, TokenLogprob? Logprob) Sample(ReadOnlySpan<float> logits, SamplingState state, IReadOnlySet<int>? endTokens = null)
    {
        var parameters = state.Parameters;
        var adjusted = logits;
        if (state.HasPenalties || state.Constraint is not null)
        {
            logits.CopyTo(_adjusted);
            if (state.HasPenalties)
            {
                ApplyPenalties(_adjusted, state);
            }

            adjusted = _adjusted;
        }

        if (state.Constraint is { } constraint)
        {
            var tokensLeft = parameters.MaxTokens - state.Generated - 1;
            if (constraint.Restrict(_adjusted, endTokens ?? NoEndTokens, tokensLeft) == 0)
            {
                // Nothing allowed (a vocabulary without the needed tokens): pick freely rather than from nothing.
                logits.CopyTo(_adjusted);
            }
        }

        var token = parameters.IsGreedy ? ArgMax(adjusted) : Draw(adjusted, parameters, state.Random);
        // The model's own log probabilities, as without a constraint (masked ones would be -inf, which JSON cannot carry).
        var logprob = parameters.Logprobs ? LogprobCalculator.Compute(logits, token, parameters.TopLogprobs) : null;
        state.Accept(token);
        return (token, logprob);
    }

    internal static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        var bestValue = float.NegativeInfinity;
        for (var i = 0; i < values.Length; i++)
        {
            if (values[i] > bestValue)
            {
                bestValue = values[i];
                best = i;
            }
        }

        return best;
    }

    private static void ApplyPenalties(Span<float> logits, SamplingState state)
    {
        var parameters = state.Parameters;
        if (parameters.RepetitionPenalty != 1f)
        {
            foreach (var token in state.SeenTokens)
            {
                var value = logits[token];
                logits[token] = value > 0 ? value / parameters.RepetitionPenalty : value * parameters.RepetitionPenalty;
            }
        }

        foreach (var (token, count) in state.GeneratedCounts)
        {
            logits[token] -= (parameters.FrequencyPenalty * count) + parameters.PresencePenalty;
        }
    }

    private int Draw(ReadOnlySpan<float> logits, SamplingParams parameters, Random random)
    {
        var max = float.NegativeInfinity;
        foreach (var v in logits)
        {
            max = Math.Max(max, v);
        }

        // Unnormalised probabilities relative to the most likely token (which gets exactly 1).
        var inverseTemperature = 1f / parameters.Temperature;
        var total = 0.0;
        for (var i = 0; i < logits.Length; i++)
        {
            var p = MathF.Exp((logits[i] - max) * inverseTemperature);
            _probabilities[i] = p;
            total += p;
        }

        var cutoff = Cutoff(parameters, total);
        var kept = 0.0;
        foreach (var p in _probabilities)
        {
            if (p >= cutoff)
            {
                kept += p;
            }
        }

        var target = random.NextDouble() * kept;
        var accumulated = 0.0;
        var last = 0;
        for (var i = 0; i < _probabilities.Length; i++)
        {
            var p = _probabilities[i];
            if (p < cutoff)
            {
                continue;
            }

            accumulated += p;
            last = i;
            if (accumulated > target)
            {
                return i;
            }
        }

        return last;
    }

    private float Cutoff(SamplingParams parameters, double total)
    {
        var cutoff = parameters.MinP > 0f ? parameters.MinP : 0f;
        if (parameters.TopK > 0 && parameters.TopK < _probabilities.Length)
        {
            _probabilities.CopyTo(_work, 0);
            cutoff = Math.Max(cutoff, ProbabilitySelection.KthLargest(_work, parameters.TopK));
        }

        if (parameters.TopP < 1f)
        {
            _probabilities.CopyTo(_work, 0);
            cutoff = Math.Max(cutoff, ProbabilitySelection.MassCutoff(_work, parameters.TopP * total));
        }

        return cutoff;
    }
}
