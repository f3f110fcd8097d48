using Appliance.Audit.Chain;
using Appliance.Audit.Stores;

namespace Appliance.Audit.Pricing;

/// <summary>
/// The usage rows of audit entries read one by one (an export), counted as the stores' usage query counts them:
/// completed model requests per UTC day, grouping and model, within [from, to).
/// </summary>
public static class EntryUsage
{
    public static readonly IReadOnlyList<string> Groupings = ["user", "team", "model", "client"];

    public static IReadOnlyList<UsageRow> From(IEnumerable<AuditEntry> entries, DateTimeOffset from, DateTimeOffset to, string groupBy, string? node = null)
    {
        Func<AuditRecord, string?> key = groupBy switch
        {
            "user" => r => r.Username,
            "team" => r => r.Team,
            "model" => r => r.Model,
            "client" => r => r.Client,
            _ => throw new ArgumentOutOfRangeException(nameof(groupBy), groupBy, "group by user, team, model or client"),
        };
        var rows = new Dictionary<(string Day, string? Key, string Model), (long Requests, long Prompt, long Completion)>();
        foreach (var entry in entries)
        {
            var record = entry.Record;
            if (record.Kind != AuditKinds.Completed || record.Model is not { } model || record.Time < from || record.Time >= to || (node is not null && entry.Node != node))
            {
                continue;
            }

            // The day as the stores cut it from the stored time: its first ten characters, in UTC.
            var day = (CanonicalJson.Time(record.Time)[..10], key(record), model);
            var (requests, prompt, completion) = rows.GetValueOrDefault(day);
            rows[day] = (requests + 1, prompt + (record.PromptTokens ?? 0), completion + (record.CompletionTokens ?? 0));
        }

        return [.. rows.OrderBy(r => r.Key.Day, StringComparer.Ordinal).ThenBy(r => r.Key.Key, StringComparer.Ordinal).ThenBy(r => r.Key.Model, StringComparer.Ordinal)
            .Select(r => new UsageRow(r.Key.Day, r.Key.Key, r.Key.Model, r.Value.Requests, r.Value.Prompt, r.Value.Completion))];
    }
}
