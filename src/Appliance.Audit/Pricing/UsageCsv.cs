using System.Globalization;
using System.Text;

namespace Appliance.Audit.Pricing;

/// <summary>Usage rows as CSV for a spreadsheet: the console's export and `appliance audit usage` write the same columns.</summary>
public static class UsageCsv
{
    /// <summary>The key of rows without one (no team, no client).</summary>
    public const string Unassigned = "(none)";

    /// <summary>The rows as CSV; with <paramref name="currency"/> (models priced) each row also has its cost, unit and unpriced tokens.</summary>
    public static string Write(string by, IEnumerable<UsageTotal> rows, string? currency)
    {
        var csv = new StringBuilder().Append("day,").Append(by).Append(",requests,prompt_tokens,completion_tokens")
            .AppendLine(currency is null ? string.Empty : ",cost,currency,unpriced_tokens");
        foreach (var row in rows)
        {
            csv.Append(row.Day).Append(',').Append(Quote(row.Key ?? Unassigned)).Append(',')
                .Append(row.Requests.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(row.PromptTokens.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(row.CompletionTokens.ToString(CultureInfo.InvariantCulture));
            if (currency is not null)
            {
                // An empty cost is a row whose models had no rate, not a free one; unpriced tokens above 0 make the cost partial.
                csv.Append(',').Append(row.Cost is { } cost ? Amount(cost) : string.Empty).Append(',').Append(Quote(currency))
                    .Append(',').Append((row.UnpricedTokens ?? 0).ToString(CultureInfo.InvariantCulture));
            }

            csv.AppendLine();
        }

        return csv.ToString();
    }

    /// <summary>A cost as a plain number: no currency sign, no thousands separators, no trailing zeros.</summary>
    public static string Amount(decimal cost) => cost.ToString("0.############", CultureInfo.InvariantCulture);

    /// <summary>RFC 4180 quoting; a leading formula character is neutralised so that spreadsheets do not run it.</summary>
    private static string Quote(string value)
    {
        var safe = value.Length > 0 && "=+-@".Contains(value[0], StringComparison.Ordinal) ? "'" + value : value;
        return safe.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + safe.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : safe;
    }
}
