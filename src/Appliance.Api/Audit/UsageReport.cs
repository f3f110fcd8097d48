using Appliance.Audit.Pricing;
using Appliance.Audit.Chain;
using Microsoft.AspNetCore.Http;

namespace Appliance.Api.Audit;

/// <summary>Requests and tokens per day grouped by user, team, model or client, from the audit store (chargeback).</summary>
internal static class UsageReport
{
    private static readonly string[] Groups = ["user", "team", "model", "client"];

    /// <summary>The period, the grouping, the node whose chain is counted (null: every node sharing the store) and whether CSV is asked for.</summary>
    public sealed record Query(DateTimeOffset From, DateTimeOffset To, string By, string? Node, bool Csv);

    /// <summary>The query's from, to (default: the last 30 days), by (default: user) and node, or null when any is invalid.</summary>
    public static Query? Parse(HttpContext http, TimeProvider time) => Validate(http, time, out var query).Count == 0 ? query : null;

    public static IResult Invalid(HttpContext http, TimeProvider time) =>
        Results.ValidationProblem(Validate(http, time, out _), title: "The usage query is not valid.");

    /// <summary>
    /// The report, with each row's cost where Pricing sets rates; <paramref name="replicaSeconds"/> (per model, this
    /// process's) is added for the admin view.
    /// </summary>
    public static IResult Build(IAuditReader reader, PriceList prices, Query query, IReadOnlyDictionary<string, double>? replicaSeconds)
    {
        var usage = prices.Price(reader.Chains.Usage(query.From, query.To, query.By, query.Node));
        if (query.Csv)
        {
            // For a finance script with a service account: the console's CSV columns, without a console session.
            return Results.Text(UsageCsv.Write(query.By, usage.Rows, prices.Currency), "text/csv; charset=utf-8");
        }

        return Results.Json(new
        {
            node = reader.Node,
            nodes = reader.Chains.Chains(query.Node),
            by = query.By,
            from = CanonicalJson.Time(query.From),
            to = CanonicalJson.Time(query.To),
            currency = prices.Currency,
            data = usage.Rows.Select(r => new
            {
                day = r.Day, key = r.Key, requests = r.Requests, promptTokens = r.PromptTokens, completionTokens = r.CompletionTokens, cost = r.Cost,
                unpricedTokens = r.UnpricedTokens, // above 0: the cost beside them is partial
            }),
            // The cost of these models' tokens is in no row: they had no rate on the days they were used.
            unpricedModels = prices.Currency is null ? null : usage.UnpricedModels,
            replicaSeconds,
            // Replica-seconds are the answering process's own (since it started), whatever the node filter.
            replicaSecondsNode = replicaSeconds is null ? null : reader.Node,
        });
    }

    private static Dictionary<string, string[]> Validate(HttpContext http, TimeProvider time, out Query query)
    {
        var errors = new Dictionary<string, string[]>();
        var q = http.Request.Query;
        var to = AuditApi.Time(q["to"], "to", errors) ?? time.GetUtcNow();
        var from = AuditApi.Time(q["from"], "from", errors) ?? (to.UtcDateTime > DateTime.MinValue.AddDays(30) ? to.AddDays(-30) : DateTimeOffset.MinValue);
        var by = AuditApi.Text(q["by"]) ?? "user";
        if (!Groups.Contains(by))
        {
            errors["by"] = [$"must be one of {string.Join(", ", Groups)}"];
        }

        if (from >= to)
        {
            errors["from"] = ["must be before 'to'"];
        }

        var format = AuditApi.Text(q["format"]) ?? "json";
        if (format is not ("json" or "csv"))
        {
            errors["format"] = ["must be json or csv"];
        }

        query = new Query(from, to, by, AuditApi.Text(q["node"]), format == "csv");
        return errors;
    }
}
