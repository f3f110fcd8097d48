using System.Globalization;
using Appliance.Audit.Stores;

namespace Appliance.Audit.Pricing;

/// <summary>One day's usage of one user, team, model or client, all models together, with what it cost where priced.</summary>
/// <param name="Cost">The priced models' tokens at their rates; null without prices, or when none of the row's models had a rate that day.</param>
/// <param name="UnpricedTokens">
/// Tokens of the row that no rate covered, so are in no cost (a cost beside them is partial); null without prices.
/// </param>
public sealed record UsageTotal(string Day, string? Key, long Requests, long PromptTokens, long CompletionTokens, decimal? Cost, long? UnpricedTokens);

/// <summary>A usage report's rows with their costs, and the models whose tokens no rate covered (their cost is left out).</summary>
public sealed record PricedUsage(IReadOnlyList<UsageTotal> Rows, IReadOnlyList<string> UnpricedModels);

/// <summary>
/// Turns the audit store's usage rows (per model) into costs at each model's rate on each day (Pricing): the node's
/// reports, and the offline `appliance audit usage` that recomputes them from an export.
/// </summary>
public sealed class PriceList(PricingOptions options)
{
    // Configuration keys are case-insensitive, so a model's price is found whatever case its id is written in.
    private readonly Dictionary<string, ModelRate[]> _rates = options.Models.ToDictionary(
        m => m.Key, m => m.Value.Rates().ToArray(), StringComparer.OrdinalIgnoreCase);

    /// <summary>The unit of the costs (Pricing:Currency); null when no model has a price, and reports leave costs out.</summary>
    public string? Currency => _rates.Count == 0 ? null : options.Currency.Trim();

    /// <summary>The rows summed over models per day and key, each model's tokens priced at its rate on that day.</summary>
    public PricedUsage Price(IEnumerable<UsageRow> rows)
    {
        var unpriced = new SortedSet<string>(StringComparer.Ordinal);
        var totals = rows.GroupBy(r => (r.Day, r.Key)).Select(day =>
        {
            decimal? cost = null;
            long? unpricedTokens = Currency is null ? null : 0;
            foreach (var row in day)
            {
                if (Cost(row) is { } priced)
                {
                    cost = (cost ?? 0) + priced;
                }
                else if (Currency is not null)
                {
                    unpriced.Add(row.Model);
                    unpricedTokens += row.PromptTokens + row.CompletionTokens;
                }
            }

            return new UsageTotal(day.Key.Day, day.Key.Key, day.Sum(r => r.Requests), day.Sum(r => r.PromptTokens), day.Sum(r => r.CompletionTokens), cost, unpricedTokens);
        })
        // One order whatever the store (PostgreSQL sorts by its locale and puts rows without a key last): a report
        // diffed against one recomputed offline differs only where the figures do.
        .OrderBy(t => t.Day, StringComparer.Ordinal).ThenBy(t => t.Key, StringComparer.Ordinal).ToList();
        return new PricedUsage(totals, [.. unpriced]);
    }

    /// <summary>What the tokens cost at the model's rate on that (UTC) day, or null when no rate covers the day.</summary>
    public decimal? Cost(string model, DateOnly day, long promptTokens, long completionTokens) =>
        _rates.TryGetValue(model, out var rates) && rates.LastOrDefault(r => r.Since is null || r.Since <= day) is { } rate
            ? (promptTokens * rate.InputPerMillion!.Value + completionTokens * rate.OutputPerMillion!.Value) / 1_000_000m
            : null;

    private decimal? Cost(UsageRow row) =>
        DateOnly.TryParseExact(row.Day, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)
            ? Cost(row.Model, day, row.PromptTokens, row.CompletionTokens)
            : null;
}
