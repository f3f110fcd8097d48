using System.Diagnostics;
using System.Globalization;
using Appliance.Audit;
using Appliance.Audit.Chain;
using Appliance.Audit.Stores;
using Appliance.Tests.Common;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Benchmarks;

/// <summary>What auditing costs: records per second each store sustains, and served throughput with audit on vs off.</summary>
internal static class AuditBench
{
    public static async Task<IEnumerable<string>> StoreRowsAsync(int repeats)
    {
        var rows = new List<string> { "| store | writers | records | records/s (median) |", "|---|---:|---:|---:|" };
        foreach (var store in new[] { "sqlite", "postgresql" })
        {
            foreach (var (writers, records) in new[] { (1, 2_000), (64, 20_000) })
            {
                var rates = new List<double>();
                for (var round = 0; round < Math.Max(1, repeats); round++)
                {
                    rates.Add(await RecordsPerSecondAsync(store, writers, records));
                }

                rows.Add(string.Create(CultureInfo.InvariantCulture, $"| {store} | {writers} | {records:N0} | {rates.Order().ElementAt(rates.Count / 2):F0} |"));
            }
        }

        return rows;
    }

    public static async Task<IEnumerable<string>> HttpRowsAsync(string folder, BenchOptions options)
    {
        var onStreams = new List<double>();
        var offStreams = new List<double>();
        var onShort = new List<double>();
        var offShort = new List<double>();
        await using (var audited = await HttpLoadBench.StartAsync(folder, options))
        await using (var unaudited = await HttpLoadBench.StartAsync(folder, options, "--Audit:Enabled=false"))
        {
            await audited.RoundAsync(8);
            await unaudited.RoundAsync(8);
            for (var round = 0; round < options.Repeats; round++)
            {
                Console.Error.WriteLine($"audit: round {round + 1} of {options.Repeats}");
                // Alternate which host goes first, so that drift on the shared machine does not favour one side.
                var (first, second) = round % 2 == 0 ? (audited, unaudited) : (unaudited, audited);
                var (firstStreams, secondStreams) = round % 2 == 0 ? (onStreams, offStreams) : (offStreams, onStreams);
                var (firstShort, secondShort) = round % 2 == 0 ? (onShort, offShort) : (offShort, onShort);
                firstStreams.Add((await first.RoundAsync(8)).TokensPerSecond);
                secondStreams.Add((await second.RoundAsync(8)).TokensPerSecond);
                secondShort.Add(await second.ShortRequestsPerSecondAsync(16, TimeSpan.FromSeconds(5)));
                firstShort.Add(await first.ShortRequestsPerSecondAsync(16, TimeSpan.FromSeconds(5)));
            }
        }

        return
        [
            "| load | audit on | audit off | on / off |",
            "|---|---:|---:|---:|",
            Row("8 streaming clients (tok/s)", onStreams, offStreams),
            Row("16 clients, 1-token requests (requests/s)", onShort, offShort),
        ];
    }

    private static async Task<double> RecordsPerSecondAsync(string kind, int writers, int records)
    {
        using var folder = new TempFolder("audit-bench");
        using var database = kind == "postgresql" ? new TestPostgres() : null;
        using IAuditStore store = database is not null
            ? new PostgresAuditStore(new Npgsql.NpgsqlConnectionStringBuilder(database.ConnectionString) { Pooling = true }.ToString(), lockNode: "bench")
            : new SqliteAuditStore(folder.Combine("audit.db"));
        using var signer = CheckpointSigner.LoadOrCreate(folder.Combine("key.pem"));
        var log = new AuditLog(store, signer, "bench", TimeProvider.System, new AuditLogOptions(), NullLogger<AuditLog>.Instance);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, writers).Select(writer => Task.Run(async () =>
        {
            for (var i = writer; i < records; i += writers)
            {
                await log.RecordAsync(Record(i));
            }
        })));
        var rate = records / clock.Elapsed.TotalSeconds;
        await log.DisposeAsync();
        return rate;
    }

    private static AuditRecord Record(int i) => new()
    {
        Time = DateTimeOffset.UtcNow, Kind = AuditKinds.Completed, RequestId = $"0HN{i:D8}:00000001", Subject = "5f1c9a62-7e3b-4c1d-9f80-2b6e4d8a1c35",
        Username = "ada", Client = "appliance-console", Roles = ["appliance-user"], SourceIp = "10.20.30.40", Method = "POST",
        Endpoint = "/v1/chat/completions", Model = "llama-3.1-8b", ModelDigest = "sha256:b81ddf87885c374c1c671e880dd17ca6dc6a13d4af13d81f2fc2e9854fa87f8d",
        Classification = "internal", Status = 200, FinishReason = "stop", PromptTokens = 812, CompletionTokens = 245, TimeToFirstTokenMs = 84.2, DurationMs = 2310.5,
    };

    private static string Row(string load, List<double> on, List<double> off)
    {
        static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
        var ratios = on.Zip(off, (a, b) => a / b).ToList();
        return string.Create(CultureInfo.InvariantCulture, $"| {load} | {Median(on):F1} | {Median(off):F1} | {Median(ratios):F3} |");
    }
}
