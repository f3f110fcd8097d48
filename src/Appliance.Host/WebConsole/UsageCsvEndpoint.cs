using Appliance.Audit.Pricing;
using System.Globalization;
using Appliance.Api.Audit;
using Appliance.WebConsole;

namespace Appliance.Host.WebConsole;

/// <summary>/console/usage.csv: the usage page's figures for a spreadsheet (tokens per day by team, model or user, and their cost where priced).</summary>
internal static class UsageCsvEndpoint
{
    private static readonly string[] Groups = ["team", "model", "user", "client"];

    public static void MapUsageCsv(this WebApplication app, string policy) =>
        app.MapGet("/console/usage.csv", (string? by, string? from, string? to, HttpContext http, IAuditReader reader, PriceList prices, IUsageScope scope, TimeProvider time) =>
        {
            by ??= "team";
            var today = DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);
            if (!Groups.Contains(by) || !Day(to, today, out var last) || !Day(from, last.AddDays(-13), out var first) || first > last)
            {
                return Results.Problem("by must be team, model, user or client; from and to are days (yyyy-MM-dd), from not after to.",
                    statusCode: StatusCodes.Status400BadRequest, title: "The usage export is not valid.");
            }

            var rows = reader.Chains.Usage(Start(first), Start(last.AddDays(1)), by, node: null, scope.TeamsOf(http.User)); // every node of the cluster
            var csv = UsageCsv.Write(by, prices.Price(rows).Rows, prices.Currency);
            return Results.File(System.Text.Encoding.UTF8.GetBytes(csv), "text/csv; charset=utf-8",
                $"usage-{by}-{first:yyyy-MM-dd}-{last:yyyy-MM-dd}.csv");
        }).RequireAuthorization(policy);

    private static bool Day(string? text, DateOnly fallback, out DateOnly day)
    {
        day = fallback;
        return string.IsNullOrWhiteSpace(text) || DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out day);
    }

    private static DateTimeOffset Start(DateOnly day) => new(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
}
