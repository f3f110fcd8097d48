using Appliance.Engine.Requests;

namespace Appliance.Engine.Sampling;

/// <summary>Log probabilities under the model's own distribution (raw logits, before penalties and temperature).</summary>
internal static class LogprobCalculator
{
    public static TokenLogprob Compute(ReadOnlySpan<float> logits, int token, int topCount)
    {
        var max = float.NegativeInfinity;
        foreach (var v in logits)
        {
            max = Math.Max(max, v);
        }

        var sum = 0.0;
        foreach (var v in logits)
        {
            sum += Math.Exp(v - max);
        }

        var logNormaliser = max + (float)Math.Log(sum);
        var alternatives = topCount > 0 ? TopCandidates(logits, topCount, logNormaliser) : [];
        return new TokenLogprob(token, logits[token] - logNormaliser, alternatives);
    }

    private static TokenCandidate[] TopCandidates(ReadOnlySpan<float> logits, int count, float logNormaliser)
    {
        count = Math.Min(count, logits.Length);
        var ids = new int[count];
        var values = new float[count];
        var filled = 0;
        for (var i = 0; i < logits.Length; i++)
        {
            var v = logits[i];
            if (filled == count && v <= values[count - 1])
            {
                continue;
            }

            // Insertion into a small descending list; count is at most 20.
            var at = filled < count ? filled++ : count - 1;
            while (at > 0 && values[at - 1] < v)
            {
                values[at] = values[at - 1];
                ids[at] = ids[at - 1];
                at--;
            }

            values[at] = v;
            ids[at] = i;
        }

        var result = new TokenCandidate[filled];
        for (var i = 0; i < filled; i++)
        {
            result[i] = new TokenCandidate(ids[i], values[i] - logNormaliser);
        }

        return result;
    }
}
