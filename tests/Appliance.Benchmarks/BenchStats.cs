namespace Appliance.Benchmarks;

/// <summary>Summaries of repeated measurements.</summary>
internal static class BenchStats
{
    /// <summary>The middle value (the upper of the two middles for an even count): always one that was measured.</summary>
    public static T Median<T>(IEnumerable<T> values)
    {
        var ordered = values.Order().ToList();
        return ordered[ordered.Count / 2];
    }
}
