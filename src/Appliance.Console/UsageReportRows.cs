using System.Globalization;
using System.Text;
using Appliance.Audit.Stores;

namespace Appliance.WebConsole;

/// <summary>One day's tokens of one team, model or user, as the usage charts and the CSV export show them.</summary>
public sealed record UsagePoint(string Day, string Key, long Requests, long PromptTokens, long CompletionTokens)
{
    public long Tokens => PromptTokens + CompletionTokens;
}

/// <summary>Turns the audit store's usage rows into chart series and CSV.</summary>
public static class UsageReportRows
{
    public const string Unassigned = "(none)";

    public static List<UsagePoint> From(IEnumerable<UsageRow> rows) =>
        [.. rows.Select(r => new UsagePoint(r.Day, r.Key ?? Unassigned, r.Requests, r.PromptTokens, r.CompletionTokens))];

    /// <summary>One series per key, every day of the range present in each (zero where the key used nothing), for aligned columns.</summary>
    public static List<(string Key, List<UsagePoint> Points)> Series(IReadOnlyList<UsagePoint> points)
    {
        var days = points.Select(p => p.Day).Distinct().Order(StringComparer.Ordinal).ToList();
        return [.. points.GroupBy(p => p.Key).OrderByDescending(g => g.Sum(p => p.Tokens)).Select(g =>
            (g.Key, days.Select(d => g.FirstOrDefault(p => p.Day == d) ?? new UsagePoint(d, g.Key, 0, 0, 0)).ToList()))];
    }

    /// <summary>The biggest users over the range.</summary>
    public static List<UsagePoint> Top(IReadOnlyList<UsagePoint> points, int count) =>
        [.. points.GroupBy(p => p.Key)
            .Select(g => new UsagePoint("total", g.Key, g.Sum(p => p.Requests), g.Sum(p => p.PromptTokens), g.Sum(p => p.CompletionTokens)))
            .OrderByDescending(p => p.Tokens).Take(count)];

    public static string Csv(string by, IEnumerable<UsagePoint> points)
    {
        var csv = new StringBuilder().Append("day,").Append(by).AppendLine(",requests,prompt_tokens,completion_tokens");
        foreach (var p in points)
        {
            csv.Append(p.Day).Append(',').Append(Quote(p.Key)).Append(',')
                .Append(p.Requests.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(p.PromptTokens.ToString(CultureInfo.InvariantCulture)).Append(',')
                .AppendLine(p.CompletionTokens.ToString(CultureInfo.InvariantCulture));
        }

        return csv.ToString();
    }

    /// <summary>RFC 4180 quoting; a leading formula character is neutralised so that spreadsheets do not run it.</summary>
    private static string Quote(string value)
    {
        var safe = value.Length > 0 && "=+-@".Contains(value[0], StringComparison.Ordinal) ? "'" + value : value;
        return safe.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + safe.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : safe;
    }
}
