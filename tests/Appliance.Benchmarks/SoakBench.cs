using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Appliance.Benchmarks;

/// <summary>
/// Many distinct callers, never seen twice: rounds of short requests, each from a new user in a new team, against the
/// real host, with the managed heap (after a full collection) and the process's working set after each round. Memory
/// that grows with every caller ever seen shows up as a steady climb from round to round.
/// </summary>
internal static class SoakBench
{
    public static async Task<IReadOnlyList<string>> RowsAsync(string folder, BenchOptions options, int callersPerRound = 1000, int concurrency = 8)
    {
        var rows = new List<string>
        {
            "| round | callers so far | managed heap after full GC (MB) | working set (MB) | failed requests |",
            "|---:|---:|---:|---:|---:|",
        };
        await using var host = await HttpLoadBench.StartAsync(folder, options);
        var body = JsonSerializer.Serialize(new { model = "bench", prompt = "soak", max_tokens = 1, temperature = 0 });
        var callers = 0;
        for (var round = 0; round <= options.Repeats; round++)
        {
            var failed = 0;
            var next = 0;
            var workers = Enumerable.Range(0, concurrency).Select(async _ =>
            {
                while (Interlocked.Increment(ref next) is var n && n <= callersPerRound)
                {
                    var user = $"soak-{round}-{n}";
                    using var client = host.ClientFor(user, $"/team-{round}-{n}");
                    using var response = await client.PostAsync("/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
                    if (!response.IsSuccessStatusCode)
                    {
                        Interlocked.Increment(ref failed);
                    }
                }
            });
            await Task.WhenAll(workers);
            callers += callersPerRound;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
            using var process = Process.GetCurrentProcess();
            // Round 0 warms everything up; the rounds after it are the measurement.
            rows.Add(string.Format(CultureInfo.InvariantCulture, "| {0} | {1} | {2:F1} | {3:F0} | {4} |",
                round == 0 ? "warm-up" : round.ToString(CultureInfo.InvariantCulture), callers, GC.GetTotalMemory(false) / 1048576.0, process.WorkingSet64 / 1048576.0, failed));
            Console.Error.WriteLine(rows[^1]);
        }

        return rows;
    }
}
