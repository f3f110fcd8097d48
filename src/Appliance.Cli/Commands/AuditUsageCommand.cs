using System.CommandLine;
using System.Globalization;
using Appliance.Audit;
using Appliance.Audit.Chain;
using Appliance.Audit.Export;
using Appliance.Audit.Pricing;
using Appliance.Audit.Stores;
using Microsoft.Extensions.Configuration;

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
        var source = AuditSource.Create(
            "Only this node's chain (default: every chain in the file or store)",
            "Accept an export without the signed end line (one written before exports had it)");
        var (file, database, postgres, node, publicKey, acceptNoEnd) = (source.File, source.Database, source.Postgres, source.Node, source.PublicKey, source.AcceptNoEnd);
        var by = new Option<string>("--by") { Description = "Group by user, team, model or client", DefaultValueFactory = _ => "team" };
        var from = new Option<string?>("--from") { Description = "First UTC day, yyyy-MM-dd (default: 30 days before --to)" };
        var to = new Option<string?>("--to") { Description = "Last UTC day, yyyy-MM-dd, included (default: today)" };
        var prices = new Option<FileInfo[]>("--prices")
        {
            Description = "A JSON settings file holding the node's Pricing section (repeat for layered files, later ones win); adds each row's cost",
            AllowMultipleArgumentsPerToken = false,
        };
        var command = new Command("usage",
            "Requests, tokens and (with --prices) cost per UTC day as CSV, from chains verified first; exit code 1 when one is broken, with no report")
        {
            by, from, to, prices,
        };
        foreach (var option in source.Options.Reverse())
        {
            command.Options.Insert(0, option); // the source first, as `audit verify` lists it
        }

        command.SetAction(parse =>
        {
            var (exportFile, storeFile, connection) = (parse.GetValue(file), parse.GetValue(database), parse.GetValue(postgres));
            if (source.Problem(parse) is { } problem)
            {
                return Fail(problem);
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
                var priceList = new PriceList(parse.GetValue(prices) is { Length: > 0 } settings ? ReadPricing(settings) : new PricingOptions());
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
                    // Each chain's head before it is verified: a live node appends meanwhile, and the report counts
                    // only entries the verification covered, read from the entries themselves as from an export.
                    var heads = (parse.GetValue(node) is { } one ? [one] : store.Nodes()).ToDictionary(n => n, n => store.Head(n)?.Sequence ?? 0);
                    if (Broken(AuditCommands.VerifyOpenStore(store, parse.GetValue(node), key)))
                    {
                        return 1;
                    }

                    rows = EntryUsage.From(heads.SelectMany(h => store.Chain(h.Key).TakeWhile(e => e.Sequence <= h.Value)), start, end, grouping, parse.GetValue(node));
                }

                if (key is null)
                {
                    Console.Error.WriteLine("warning: without --public-key only the hashes were checked, not who signed them");
                }

                Console.Write(UsageCsv.Write(grouping, priceList.Price(rows).Rows, priceList.Currency));
                return 0;
            }
            catch (Exception exception) when (exception is not OutOfMemoryException)
            {
                // Exit code 1 says a chain is broken, and nothing else: every other failure (a file that cannot be
                // read, a key that is no PEM, a settings mistake) is 2, with its message.
                return Fail(Messages(exception));
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

    /// <summary>
    /// The Pricing section of one or more settings files, later files over earlier ones, bound and checked as the node
    /// binds and checks its own (case, comments, figures written as strings, unknown keys).
    /// </summary>
    private static PricingOptions ReadPricing(IReadOnlyList<FileInfo> files)
    {
        var builder = new ConfigurationBuilder();
        foreach (var file in files)
        {
            builder.AddJsonFile(file.FullName, optional: false, reloadOnChange: false);
        }

        var section = builder.Build().GetSection(PricingOptions.Section);
        if (!section.Exists())
        {
            throw new InvalidDataException($"{string.Join(", ", files.Select(f => f.FullName))}: no {PricingOptions.Section} section");
        }

        var pricing = section.Get<PricingOptions>(binder => binder.ErrorOnUnknownConfiguration = true) ?? new PricingOptions();
        return pricing.Validate().ToList() is { Count: > 0 } problems ? throw new InvalidDataException(string.Join("; ", problems)) : pricing;
    }

    /// <summary>The message with those of the exceptions inside it (the configuration binder names the key only there).</summary>
    private static string Messages(Exception exception) =>
        exception.InnerException is { } inner ? $"{exception.Message} ({Messages(inner)})" : exception.Message;

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
