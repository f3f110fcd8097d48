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

    [Fact]
    public void An_existing_file_too_long_to_index_at_start_opens_without_the_index_and_says_how_to_build_it()
    {
        using var folder = new Appliance.Tests.Common.TempFolder("usage-index");
        var path = folder.Combine("audit.db");
        using (new Appliance.Audit.Stores.SqliteAuditStore(path))
        {
            // a file of the earlier version: the index is not there yet
        }

        // An entry far down the table stands for a long file (the size is read from the last row id, not counted).
        Sql(path, "DROP INDEX audit_entries_user_time; "
            + "INSERT INTO audit_entries (rowid, seq, node, time, kind, roles, prev_hash, hash) VALUES (2000000, 1, 'old', '2026-01-01T00:00:00.0000000Z', 'request.accepted', '[]', 'p', 'h')");
        using (var store = new Appliance.Audit.Stores.SqliteAuditStore(path))
        {
            Assert.Contains("more than 1,000,000 entries", store.SkippedIndex, StringComparison.Ordinal);
            Assert.Contains("CREATE INDEX IF NOT EXISTS audit_entries_user_time ON audit_entries (node, username, time)", store.SkippedIndex, StringComparison.Ordinal);
        }

        Assert.False(IndexExists(path));
        Sql(path, "DELETE FROM audit_entries WHERE node = 'old'");
        using (var store = new Appliance.Audit.Stores.SqliteAuditStore(path))
        {
            Assert.Null(store.SkippedIndex); // a short file gets it at open
        }

        Assert.True(IndexExists(path));
    }

    private static void Sql(string path, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static bool IndexExists(string path)
    {
        using var connection = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'audit_entries_user_time'";
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 1;
    }
}
