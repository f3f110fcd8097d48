namespace Appliance.Engine.Sampling;

/// <summary>
/// Expected-linear-time selection over unnormalised probabilities (three-way quickselect), so that top-k and
/// top-p cutoffs need no full sort of a 50k-100k vocabulary on every token.
/// </summary>
internal static class ProbabilitySelection
{
    /// <summary>The k-th largest value of <paramref name="work"/> (1-based). Reorders <paramref name="work"/>.</summary>
    public static float KthLargest(Span<float> work, int k)
    {
        var lo = 0;
        var hi = work.Length;
        var above = 0;
        while (true)
        {
            var (greaterEnd, equalEnd) = Partition(work, lo, hi);
            var greater = greaterEnd - lo;
            var equal = equalEnd - greaterEnd;
            if (above + greater >= k)
            {
                hi = greaterEnd;
            }
            else if (above + greater + equal >= k)
            {
                return work[greaterEnd];
            }
            else
            {
                above += greater + equal;
                lo = equalEnd;
            }
        }
    }

    /// <summary>
    /// The smallest value v such that the values greater than or equal to v sum to at least <paramref name="targetMass"/>
    /// (the top-p nucleus boundary). Reorders <paramref name="work"/>.
    /// </summary>
    public static float MassCutoff(Span<float> work, double targetMass)
    {
        var lo = 0;
        var hi = work.Length;
        var massAbove = 0.0;
        while (hi > lo)
        {
            var (greaterEnd, equalEnd) = Partition(work, lo, hi);
            var greaterMass = Sum(work[lo..greaterEnd]);
            var pivot = work[greaterEnd];
            var equalMass = (double)pivot * (equalEnd - greaterEnd);
            if (greaterEnd > lo && massAbove + greaterMass >= targetMass)
            {
                hi = greaterEnd;
            }
            else if (massAbove + greaterMass + equalMass >= targetMass || equalEnd == hi)
            {
                return pivot;
            }
            else
            {
                massAbove += greaterMass + equalMass;
                lo = equalEnd;
            }
        }

        return work.Length > 0 ? work[Math.Min(lo, work.Length - 1)] : 0f;
    }

    /// <summary>
    /// Three-way partition of [lo, hi) around a middle pivot, largest first:
    /// [lo, greaterEnd) &gt; pivot, [greaterEnd, equalEnd) == pivot, [equalEnd, hi) &lt; pivot.
    /// </summary>
    private static (int GreaterEnd, int EqualEnd) Partition(Span<float> work, int lo, int hi)
    {
        var pivot = MedianOfThree(work[lo], work[lo + ((hi - lo) / 2)], work[hi - 1]);
        var lt = lo;
        var i = lo;
        var gt = hi;
        while (i < gt)
        {
            var value = work[i];
            if (value > pivot)
            {
                (work[lt], work[i]) = (work[i], work[lt]);
                lt++;
                i++;
            }
            else if (value < pivot)
            {
                gt--;
                (work[gt], work[i]) = (work[i], work[gt]);
            }
            else
            {
                i++;
            }
        }

        return (lt, gt);
    }

    private static float MedianOfThree(float a, float b, float c) =>
        Math.Max(Math.Min(a, b), Math.Min(Math.Max(a, b), c));

    private static double Sum(ReadOnlySpan<float> values)
    {
        var sum = 0.0;
        foreach (var v in values)
        {
            sum += v;
        }

        return sum;
    }
}
