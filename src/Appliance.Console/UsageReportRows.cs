using Appliance.Audit.Pricing;
using System.Globalization;
using Appliance.Api.Audit;

namespace Appliance.WebConsole;

/// <summary>One day's tokens of one team, model or user, and their cost where the models are priced, as the usage charts and the CSV export show them.</summary>
public sealed record UsagePoint(string Day, string Key, long Requests, long PromptTokens, long CompletionTokens, decimal? Cost = null, long UnpricedTokens = 0)
{
    public long Tokens => PromptTokens + CompletionTokens;

    /// <summary>The cost with two decimals (more below a cent), marked partial where some tokens had no rate, or a dash when none had one.</summary>
    public string CostText => Cost switch
    {
        null => "–",
        { } cost => (cost is > 0 and < 0.01m ? UsageCsv.Amount(cost) : cost.ToString("N2", CultureInfo.InvariantCulture))
            + (UnpricedTokens > 0 ? string.Create(CultureInfo.InvariantCulture, $" (partial: {UnpricedTokens:N0} tokens without a rate)") : string.Empty),
    };
}

/// <summary>Turns the audit store's usage rows into chart series and tables.</summary>
public static class UsageReportRows
{
    public const string Unassigned = UsageCsv.Unassigned;

    public static List<UsagePoint> From(PricedUsage usage) =>
        [.. usage.Rows.Select(r => new UsagePoint(r.Day, r.Key ?? Unassigned, r.Requests, r.PromptTokens, r.CompletionTokens, r.Cost, r.UnpricedTokens ?? 0))];

    /// <summary>One series per key, every day of the range present in each (zero where the key used nothing), for aligned columns.</summary>
    public static List<(string Key, List<UsagePoint> Points)> Series(IReadOnlyList<UsagePoint> points)
    {
        var days = points.Select(p => p.Day).Distinct().Order(StringComparer.Ordinal).ToList();
        return [.. points.GroupBy(p => p.Key).OrderByDescending(g => g.Sum(p => p.Tokens)).Select(g =>
            (g.Key, days.Select(d => g.FirstOrDefault(p => p.Day == d) ?? new UsagePoint(d, g.Key, 0, 0, 0)).ToList()))];
    }

    /// <summary>The biggest users over the range (all of them with <see cref="int.MaxValue"/>), with the cost of their priced tokens.</summary>
    public static List<UsagePoint> Top(IReadOnlyList<UsagePoint> points, int count) =>
        [.. points.GroupBy(p => p.Key)
            .Select(g => new UsagePoint("total", g.Key, g.Sum(p => p.Requests), g.Sum(p => p.PromptTokens), g.Sum(p => p.CompletionTokens),
                g.Any(p => p.Cost is not null) ? g.Sum(p => p.Cost ?? 0) : null, g.Sum(p => p.UnpricedTokens)))
            .OrderByDescending(p => p.Tokens).Take(count)];
}
