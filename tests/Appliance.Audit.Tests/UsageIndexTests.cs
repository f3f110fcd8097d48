using Microsoft.Data.Sqlite;

namespace Appliance.Audit.Tests;

/// <summary>
/// A caller's own usage this month (the console's welcome page) is read through (node, username, time): the query the
/// store runs for one user goes through that index, not one that scans the user's whole history or everyone's month.
/// </summary>
public sealed class UsageIndexTests
{
    [Fact]
    public async Task One_callers_usage_over_a_period_is_read_through_the_user_time_index()
    {
        await using var fixture = new AuditChainFixture();
        for (var i = 1; i <= 50; i++)
        {
            await fixture.Log.RecordAsync(AuditChainFixture.Record(i) with { Kind = AuditKinds.Completed });
        }

        await fixture.CloseLogAsync();
        using var connection = new SqliteConnection($"Data Source={fixture.Folder.Combine("audit.db")};Mode=ReadOnly");
        connection.Open();
        using var plan = connection.CreateCommand();
        // The shape of SqlAuditStore.Usage's query for one user (the welcome page's).
        plan.CommandText = "EXPLAIN QUERY PLAN SELECT substr(time, 1, 10) AS day, username, model, COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) "
            + "FROM audit_entries WHERE node IN (@node0) AND kind = @kind AND model IS NOT NULL AND time >= @from AND time < @to AND username = @user "
            + "GROUP BY substr(time, 1, 10), username, model ORDER BY 1, 2, 3";
        foreach (var (name, value) in new[] { ("node0", "node-1"), ("kind", AuditKinds.Completed), ("from", "2026-12-01"), ("to", "2027-01-01"), ("user", "user1") })
        {
            plan.Parameters.AddWithValue(name, value);
        }

        var steps = new List<string>();
        using (var reader = plan.ExecuteReader())
        {
            while (reader.Read())
            {
                steps.Add(reader.GetString(3));
            }
        }

        Assert.Contains(steps, s => s.Contains("audit_entries_user_time (node=? AND username=? AND time>? AND time<?)", StringComparison.Ordinal));
    }
}
