using System.Globalization;

namespace Appliance.Benchmarks;

/// <summary>
/// The pool issue's targets, measured side by side in one run: a light tenant's time to first token alone and while
/// another tenant floods the model (target: at most 2x), and served throughput with quotas and tenant fairness on
/// against the plain host the API issue measured (target: at least 95%).
/// </summary>
internal static class FairnessBench
{
    private const int FloodRequests = 50;
    private const int LightRequests = 8;
    private const int LightTokens = 16;

    /// <summary>An occasional caller pauses between its requests (alone and under flood alike); a steady one does not.</summary>
    private static readonly TimeSpan ThinkTime = TimeSpan.FromMilliseconds(200);

    public static async Task<IEnumerable<string>> RowsAsync(string folder, BenchOptions options)
    {
        string[] pooled =
        [
            "--Quotas:User:TokensPerMinute=1000000000", "--Quotas:User:RequestsPerMinute=1000000", "--Quotas:User:ConcurrentStreams=10000",
            "--Quotas:Team:TokensPerDay=1000000000000", "--Pool:TenantWeights:/light=1", "--Pool:TenantWeights:/heavy=1",
        ];
        await using var baseline = await HttpLoadBench.StartAsync(folder, options);
        await using var pool = await HttpLoadBench.StartAsync(folder, options, pooled);
        using var light = pool.ClientFor("lena", "/light");
        using var heavy = pool.ClientFor("hugo", "/heavy");
        using var heavyColleague = pool.ClientFor("hanna", "/heavy");
        await baseline.RoundAsync(8);
        await pool.RoundAsync(8);

        var alone = new List<double>();
        var flooded = new List<double>();
        var aloneSteady = new List<double>();
        var floodedSteady = new List<double>();
        var sameTenant = new List<double>();
        var onThroughput = new List<double>();
        var offThroughput = new List<double>();
        for (var round = 0; round < options.Repeats; round++)
        {
            Console.Error.WriteLine($"fairness: round {round + 1} of {options.Repeats}");
            alone.Add(await MedianTtftAsync(pool, light, ThinkTime));
            flooded.Add((await UnderFloodAsync(pool, heavy, light, options.NewTokens, ThinkTime)).Median);
            aloneSteady.Add(await MedianTtftAsync(pool, light, TimeSpan.Zero));
            floodedSteady.Add((await UnderFloodAsync(pool, heavy, light, options.NewTokens, TimeSpan.Zero)).Median);
            sameTenant.Add((await UnderFloodAsync(pool, heavy, heavyColleague, options.NewTokens, ThinkTime)).First);
            // Alternate which host goes first, so that drift on the shared machine does not favour one side.
            var (first, second) = round % 2 == 0 ? (pool, baseline) : (baseline, pool);
            var (firstList, secondList) = round % 2 == 0 ? (onThroughput, offThroughput) : (offThroughput, onThroughput);
            firstList.Add((await first.RoundAsync(8)).TokensPerSecond);
            secondList.Add((await second.RoundAsync(8)).TokensPerSecond);
        }

        var culture = CultureInfo.InvariantCulture;
        return
        [
            $"| light tenant, time to first token (ms), median of rounds | occasional ({ThinkTime.TotalMilliseconds:F0} ms between requests) | steady (back to back) |",
            "|---|---:|---:|",
            string.Create(culture, $"| alone | {BenchStats.Median(alone) * 1000:F1} | {BenchStats.Median(aloneSteady) * 1000:F1} |"),
            string.Create(culture, $"| while another tenant floods ({FloodRequests} streams of {options.NewTokens} tokens) | {BenchStats.Median(flooded) * 1000:F1} | {BenchStats.Median(floodedSteady) * 1000:F1} |"),
            string.Create(culture, $"| flooded / alone (target at most 2) | {BenchStats.Median(flooded.Zip(alone, (f, a) => f / a)):F2} | {BenchStats.Median(floodedSteady.Zip(aloneSteady, (f, a) => f / a)):F2} |"),
            string.Create(culture, $"| for comparison: the first request of a colleague inside the flooding tenant (queued behind it) | {BenchStats.Median(sameTenant) * 1000:F1} | |"),
            string.Empty,
            "| 8 streaming clients | pool + quotas on | baseline host | on / baseline (target at least 0.95) |",
            "|---|---:|---:|---:|",
            string.Create(culture, $"| tokens/s | {BenchStats.Median(onThroughput):F1} | {BenchStats.Median(offThroughput):F1} | {BenchStats.Median(onThroughput.Zip(offThroughput, (a, b) => a / b)):F3} |"),
        ];
    }

    private static async Task<double> MedianTtftAsync(HttpLoadBench host, HttpClient client, TimeSpan thinkTime)
    {
        var samples = new List<double>();
        for (var i = 0; i < LightRequests; i++)
        {
            await Task.Delay(thinkTime);
            samples.Add(await host.TimeToFirstTokenAsync(client, 1000 + i, LightTokens));
        }

        return BenchStats.Median(samples);
    }

    /// <summary>
    /// The light client's time to first token while the flooding client keeps the model saturated: the median of its
    /// requests, and its first (a client of the flooding tenant waits for the flood with its first request only).
    /// </summary>
    private static async Task<(double Median, double First)> UnderFloodAsync(HttpLoadBench host, HttpClient flooder, HttpClient light, int floodTokens, TimeSpan thinkTime)
    {
        var flood = Enumerable.Range(0, FloodRequests).Select(i => host.StreamTokensAsync(flooder, i, floodTokens)).ToList();
        await Task.Delay(500); // the batch is full and the queue long before the light client asks
        var first = await host.TimeToFirstTokenAsync(light, 999, LightTokens);
        var rest = new List<double> { first };
        for (var i = 1; i < LightRequests; i++)
        {
            await Task.Delay(thinkTime);
            rest.Add(await host.TimeToFirstTokenAsync(light, 1000 + i, LightTokens));
        }

        if (flood.Any(t => t.IsCompleted))
        {
            Console.Error.WriteLine($"fairness: {flood.Count(t => t.IsCompleted)} flood requests had finished before the light client's last request");
        }

        await Task.WhenAll(flood);
        return (BenchStats.Median(rest), first);
    }
}
