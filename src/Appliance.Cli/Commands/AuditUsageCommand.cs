using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Appliance.Audit;
using Appliance.Audit.Chain;
using Appliance.Audit.Export;
using Appliance.Audit.Pricing;
using Appliance.Audit.Stores;

namespace Appliance.Cli.Commands;

/// <summary>
/// `appliance audit usage`: the usage report (and its cost, with the node's prices) recomputed offline from an export or
/// the store, after verifying the chains it is read from. An auditor checks a bill against the signed log without
/// trusting the node that produced the bill.
/// </summary>
internal static class AuditUsageCommand
{
    public static Command Create()
    {
        var file = new Option<FileInfo?>("--file") { Description = "A JSON Lines export (GET /audit/export)" };
        var database = new Option<FileInfo?>("--db") { Description = "The SQLite audit store (Audit:SqlitePath, by default <data>/audit/audit.db)" };
        var postgres = new Option<string?>("--postgres") { Description = "A PostgreSQL audit store: its Npgsql connection string (Audit:PostgresConnectionString)" };
        var node = new Option<string?>("--node") { Description = "Only this node's chain (default: every chain in the file or store)" };
        var publicKey = new Option<FileInfo?>("--public-key") { Description = "The checkpoint public key (PEM; GET /audit/public-key). Without it signatures are not checked" };
        var acceptNoEnd = new Option<bool>("--accept-no-end") { Description = "Accept an export without the signed end line (one written before exports had it)" };
        var by = new Option<string>("--by") { Description = "Group by user, team, model or client", DefaultValueFactory = _ => "team" };
        var from = new Option<string?>("--from") { Description = "First UTC day, yyyy-MM-dd (default: 30 days before --to)" };
        var to = new Option<string?>("--to") { Description = "Last UTC day, yyyy-MM-dd, included (default: today)" };
        var prices = new Option<FileInfo?>("--prices")
        {
            Description = "A settings file holding the node's Pricing section (its appsettings JSON); adds each row's cost",
        };
        var command = new Command("usage",
            "Requests, tokens and (with --prices) cost per UTC day as CSV, from chains verified first; exit code 1 when one is broken, with no report")
        {
            file, database, postgres, node, publicKey, acceptNoEnd, by, from, to, prices,
        };
        command.SetAction(parse =>
        {
            var (exportFile, storeFile, connection) = (parse.GetValue(file), parse.GetValue(database), parse.GetValue(postgres));
            if (new object?[] { exportFile, storeFile, connection }.Count(o => o is not null) != 1)
            {
                return Fail("give exactly one of --file, --db or --postgres");
            }

            var grouping = parse.GetValue(by)!;
            if (!EntryUsage.Groupings.Contains(grouping))
            {
                return Fail($"--by must be one of {string.Join(", ", EntryUsage.Groupings)}");
            }

            var today = DateOnly.FromDateTime(DateTime.UtcNow);
            if (!Day(parse.GetValue(to), today, out var last) || !Day(parse.GetValue(from), last.AddDays(-30), out var first) || first > last)
            {
                return Fail("--from and --to are UTC days written yyyy-MM-dd, --from not after --to");
            }

            var (start, end) = (Start(first), Start(last.AddDays(1)));
            try
            {
                var priceList = new PriceList(parse.GetValue(prices) is { } settings ? ReadPricing(settings) : new PricingOptions());
                using var key = AuditCommands.LoadKey(parse.GetValue(publicKey));
                IReadOnlyList<UsageRow> rows;
                if (exportFile is not null)
                {
                    using var export = AuditCommands.OpenExport(exportFile);
                    if (Broken(AuditCommands.VerifyExport(export, parse.GetValue(node), key, parse.GetValue(acceptNoEnd))))
                    {
                        return 1;
                    }

                    // Verified, so no entry is there twice: exports joined with cat verify only when their parts do not overlap.
                    using var reader = AuditCommands.Reader(export);
                    rows = EntryUsage.From(AuditExport.Lines(reader).Select(l => l.Line).OfType<AuditEntry>(), start, end, grouping, parse.GetValue(node));
                }
                else
                {
                    using var store = storeFile is not null ? AuditCommands.OpenSqlite(storeFile) : (SqlAuditStore)new PostgresAuditStore(connection!);
                    if (Broken(AuditCommands.VerifyOpenStore(store, parse.GetValue(node), key)))
                    {
                        return 1;
                    }

                    rows = store.Usage(parse.GetValue(node), start, end, grouping);
                }

                if (key is null)
                {
                    Console.Error.WriteLine("warning: without --public-key only the hashes were checked, not who signed them");
                }

                Console.Write(UsageCsv.Write(grouping, priceList.Price(rows).Rows, priceList.Currency));
                return 0;
            }
            catch (Exception exception) when (exception is IOException or InvalidDataException or InvalidOperationException or JsonException
                or Microsoft.Data.Sqlite.SqliteException or Npgsql.NpgsqlException or ArgumentException)
            {
                return Fail(exception.Message);
            }
        });
        return command;
    }

    /// <summary>Prints the verdict of each chain that is not intact; a report from a broken log would be no proof of anything.</summary>
    private static bool Broken(IReadOnlyList<(string Node, ChainVerification Verdict)> verdicts)
    {
        foreach (var (chain, verdict) in verdicts.Where(v => !v.Verdict.Ok))
        {
            Console.Error.WriteLine($"node {chain}: BROKEN at entry {verdict.FirstBrokenSequence} ({verdict.Problem}): {verdict.Message}");
        }

        return verdicts.Any(v => !v.Verdict.Ok);
    }

    /// <summary>The Pricing section of a settings file (comments and trailing commas allowed, as the node reads it), checked as the node checks it.</summary>
    private static PricingOptions ReadPricing(FileInfo settings)
    {
        var options = new JsonSerializerOptions
        {
            PropertyNameCaseInsensitive = true,
            ReadCommentHandling = JsonCommentHandling.Skip,
            AllowTrailingCommas = true,
            NumberHandling = JsonNumberHandling.AllowReadingFromString, // environment-style "0.20"
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, // a misspelt rate is not a free one
        };
        using var document = JsonDocument.Parse(File.ReadAllText(settings.FullName), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var section = document.RootElement.EnumerateObject().FirstOrDefault(p => string.Equals(p.Name, PricingOptions.Section, StringComparison.OrdinalIgnoreCase));
        if (section.Value.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{settings.FullName} has no {PricingOptions.Section} section");
        }

        var pricing = section.Value.Deserialize<PricingOptions>(options) ?? new PricingOptions();
        // Configuration keys are case-insensitive on the node: the same here.
        pricing = pricing with { Models = new Dictionary<string, ModelPrice>(pricing.Models, StringComparer.OrdinalIgnoreCase) };
        return pricing.Validate().ToList() is { Count: > 0 } problems
            ? throw new InvalidDataException($"{settings.FullName}: {string.Join("; ", problems)}")
            : pricing;
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"error: {message}");
        return 2;
    }

    private static bool Day(string? text, DateOnly fallback, out DateOnly day)
    {
        day = fallback;
        return string.IsNullOrWhiteSpace(text) || DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out day);
    }

    private static DateTimeOffset Start(DateOnly day) => new(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
}
