using Appliance.Engine.Sampling;

namespace Appliance.Engine.Tests.Sampling;

public sealed class ProbabilitySelectionTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(500)]
    [InlineData(999)]
    public void KthLargest_equals_the_value_a_full_sort_finds(int k)
    {
        var values = RandomValues(1000, seed: k);
        var sorted = values.OrderByDescending(v => v).ToArray();

        Assert.Equal(sorted[k - 1], ProbabilitySelection.KthLargest(values.ToArray(), k));
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(0.5)]
    [InlineData(0.9)]
    [InlineData(0.999)]
    public void MassCutoff_is_the_smallest_value_of_the_nucleus(double topP)
    {
        var values = RandomValues(5000, seed: 3).Select(v => v * v * v).ToArray();
        var total = values.Sum(v => (double)v);
        var sorted = values.OrderByDescending(v => v).ToArray();
        var accumulated = 0.0;
        var expected = sorted[^1];
        foreach (var v in sorted)
        {
            accumulated += v;
            if (accumulated >= topP * total)
            {
                expected = v;
                break;
            }
        }

        Assert.Equal(expected, ProbabilitySelection.MassCutoff(values.ToArray(), topP * total));
    }

    [Fact]
    public void Selections_handle_many_equal_values()
    {
        var values = Enumerable.Repeat(0.5f, 100).Append(1f).ToArray();
        Assert.Equal(0.5f, ProbabilitySelection.KthLargest(values.ToArray(), 50));
        Assert.Equal(1f, ProbabilitySelection.MassCutoff(values.ToArray(), 0.5));
        Assert.Equal(0.5f, ProbabilitySelection.MassCutoff(values.ToArray(), 2.0));
    }

    private static float[] RandomValues(int count, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => (float)random.NextDouble())];
    }
}
