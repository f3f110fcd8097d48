using System.Text.Json;
using Appliance.Identity.ApiKeys;
using Appliance.Tests.Common;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Appliance.Identity.Tests;

/// <summary>The key store over a real SQLite file and a real PostgreSQL shared by two nodes.</summary>
public sealed class ApiKeyStoreTests : IDisposable
{
    private static readonly DateTimeOffset Now = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Refresh = TimeSpan.FromSeconds(5);
    private readonly TempFolder _folder = new("api-key-store");
    private readonly FakeTimeProvider _time = new(Now);

    [Theory]
    [InlineData("")]
    [InlineData("eyJhbGciOiJSUzI1NiJ9.e30.sig")]
    [InlineData("apk_")]
    [InlineData("apk_short_secret")]
    [InlineData("apk_0123456789abcdef_")]
    public void Malformed_keys_are_not_parsed(string text) => Assert.Null(ApiKeySecret.Parse(text));

    [Fact]
    public void A_key_authenticates_until_it_expires_or_is_revoked_and_the_store_reloads_what_it_saved()
    {
        var path = _folder.Combine("api-keys.db");
        var (id, key) = (string.Empty, string.Empty);
        using (var store = Sqlite(path))
        {
            (id, key) = Issue(store, "ada");
            Assert.Equal("ada", store.Authenticate(key, Now).Record?.Owner);
            Assert.Equal($"expired API key {id} of ada", store.Authenticate(key, Now.AddDays(2)).Refusal);
            Assert.Equal("unknown API key", store.Authenticate(key[..^1] + (key[^1] == 'A' ? 'B' : 'A'), Now).Refusal);

            Assert.True(store.Revoke(id, "admin", Now.AddHours(1)));
            Assert.True(store.Revoke(id, "someone else", Now.AddHours(3))); // the first revocation stands
            Assert.False(store.Revoke("ffffffffffffffff", "admin", Now));
        }

        using var reloaded = Sqlite(path);
        Assert.Equal($"revoked API key {id} of ada", reloaded.Authenticate(key, Now.AddHours(2)).Refusal);
        Assert.Equal((Now.AddHours(1), "admin"), (reloaded.Find(id)!.RevokedAt, reloaded.Find(id)!.RevokedBy));
    }

    [Fact]
    public void In_a_cluster_a_key_works_on_every_node_at_once_and_a_revocation_reaches_the_others_within_the_refresh_interval()
    {
        using var database = new TestPostgres();
        using var node1 = new ApiKeyStore(new PostgresApiKeyTable(database.ConnectionString), Refresh, _time, NullLogger.Instance);
        using var node2 = new ApiKeyStore(new PostgresApiKeyTable(database.ConnectionString), Refresh, _time, NullLogger.Instance);
        Assert.Equal(("postgresql", "postgresql"), (node1.Backend, node2.Backend));

        var (id, key) = Issue(node1, "ada");
        Assert.Equal("ada", node2.Authenticate(key, Now).Record?.Owner); // not in node 2's snapshot yet: looked up

        Assert.True(node1.Revoke(id, "admin", Now));
        Assert.NotNull(node1.Find(id)!.RevokedAt);
        Assert.Equal($"revoked API key {id} of ada", node1.Authenticate(key, Now).Refusal); // at once where revoked
        _time.Advance(Refresh + TimeSpan.FromMilliseconds(1));
        Assert.Equal($"revoked API key {id} of ada", node2.Authenticate(key, Now).Refusal); // within the interval elsewhere
        Assert.Equal([id], node2.All().Select(k => k.Id));
    }

    [Fact]
    public void A_made_up_key_id_is_looked_up_once_per_refresh_and_a_key_issued_later_with_another_id_still_works()
    {
        var table = new CountingTable();
        using var node1 = new ApiKeyStore(table, Refresh, _time, NullLogger.Instance);
        using var node2 = new ApiKeyStore(table, Refresh, _time, NullLogger.Instance);
        var madeUp = ApiKeySecret.Generate().Key;
        var before = table.Calls;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            Assert.Equal("unknown API key", node2.Authenticate(madeUp, Now).Refusal);
        }

        Assert.Equal(before + 1, table.Calls); // one lookup, then remembered as unknown

        var (_, key) = Issue(node1, "bob");
        Assert.Equal("bob", node2.Authenticate(key, Now).Record?.Owner);
        _time.Advance(Refresh);
        before = table.Calls;
        Assert.Equal("unknown API key", node2.Authenticate(madeUp, Now).Refusal);
        Assert.Equal(before + 2, table.Calls); // the refresh, and the made-up id looked up again
    }

    [Fact]
    public void A_flood_of_made_up_key_ids_is_not_a_flood_of_lookups_and_a_real_key_still_works_afterwards()
    {
        var table = new CountingTable();
        using var node1 = new ApiKeyStore(table, Refresh, _time, NullLogger.Instance);
        using var node2 = new ApiKeyStore(table, Refresh, _time, NullLogger.Instance);
        var (_, key) = Issue(node1, "bob"); // on another node: not in node 2's snapshot yet
        var before = table.Calls;
        for (var attempt = 0; attempt < 200; attempt++)
        {
            Assert.Equal("unknown API key", node2.Authenticate(ApiKeySecret.Generate().Key, Now).Refusal);
        }

        Assert.Equal(before + 20, table.Calls); // a second's budget, not one query per made-up id
        Assert.Equal("unknown API key", node2.Authenticate(key, Now).Refusal); // within the flood's second, even a real one

        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal("bob", node2.Authenticate(key, Now).Record?.Owner); // not remembered as unknown: found once it passed
    }

    [Fact]
    public void A_node_that_cannot_reread_the_table_answers_from_its_snapshot_for_twice_the_interval_then_refuses_keys()
    {
        var table = new CountingTable();
        using var store = new ApiKeyStore(table, Refresh, _time, NullLogger.Instance);
        var (id, key) = Issue(store, "ada");
        table.Failing = true;

        _time.Advance(Refresh + TimeSpan.FromSeconds(1));
        Assert.Equal("ada", store.Authenticate(key, Now).Record?.Owner); // young enough
        _time.Advance(Refresh);
        Assert.Contains("could not be reread", store.Authenticate(key, Now).Refusal, StringComparison.Ordinal); // a revocation may be pending

        table.Failing = false;
        _time.Advance(TimeSpan.FromSeconds(1)); // past the retry pause
        Assert.Equal("ada", store.Authenticate(key, Now).Record?.Owner);

        // A revocation is remembered from what was written, with no read after the write that could fail.
        var calls = table.Calls;
        Assert.True(store.Revoke(id, "admin", Now));
        Assert.Equal(calls + 2, table.Calls); // a read before the write, the write, and nothing after it
        Assert.Equal($"revoked API key {id} of ada", store.Authenticate(key, Now).Refusal);
    }

    [Fact]
    public void A_key_copied_to_two_nodes_files_and_revoked_on_one_stays_revoked_whichever_file_is_imported_first()
    {
        var (id, key, hash) = ApiKeySecret.Generate();
        var active = new ApiKeyRecord
        {
            Id = id, Name = "shared", Owner = "svc-report", Roles = ["appliance-user"], CreatedAt = Now, CreatedBy = "carol",
            ExpiresAt = Now.AddDays(30), SecretHash = hash,
        };
        var revoked = active with { RevokedAt = Now.AddDays(1), RevokedBy = "carol" };
        using var database = new TestPostgres();
        foreach (var (node, copy) in new[] { ("node-1", active), ("node-2", revoked) })
        {
            var folder = Directory.CreateDirectory(_folder.Combine(node)).FullName;
            File.WriteAllText(Path.Combine(folder, ApiKeyStore.LegacyFileName), JsonSerializer.Serialize(new[] { copy }, new JsonSerializerOptions(JsonSerializerDefaults.Web)));
            using var store = new ApiKeyStore(new PostgresApiKeyTable(database.ConnectionString), Refresh, _time, NullLogger.Instance);
            Assert.Equal(1, store.ImportLegacyFile(folder));
        }

        using var cluster = new ApiKeyStore(new PostgresApiKeyTable(database.ConnectionString), Refresh, _time, NullLogger.Instance);
        Assert.Equal($"revoked API key {id} of svc-report", cluster.Authenticate(key, Now.AddDays(2)).Refusal);
    }

    [Fact]
    public void Keys_of_an_earlier_versions_json_file_are_imported_once_and_keep_working()
    {
        var (id, key, hash) = ApiKeySecret.Generate();
        var legacy = new[]
        {
            new ApiKeyRecord
            {
                Id = id, Name = "nightly", Owner = "svc-report", Roles = ["appliance-user"], Groups = ["finance"], Clearance = "internal",
                CreatedAt = Now, CreatedBy = "carol", ExpiresAt = Now.AddDays(30), SecretHash = hash,
            },
        };
        File.WriteAllText(_folder.Combine(ApiKeyStore.LegacyFileName), JsonSerializer.Serialize(legacy, new JsonSerializerOptions(JsonSerializerDefaults.Web)));

        using (var store = Sqlite(_folder.Combine("api-keys.db")))
        {
            Assert.Equal(1, store.ImportLegacyFile(_folder.Path));
            var imported = store.Authenticate(key, Now).Record;
            Assert.Equal(("svc-report", "finance", "internal"), (imported?.Owner, imported?.Groups.Single(), imported?.Clearance));
            Assert.Equal(0, store.ImportLegacyFile(_folder.Path)); // renamed: not read again
        }

        Assert.False(File.Exists(_folder.Combine(ApiKeyStore.LegacyFileName)));
        Assert.True(File.Exists(_folder.Combine(ApiKeyStore.LegacyFileName + ".imported")));
    }

    public void Dispose() => _folder.Dispose();

    /// <summary>A real (in-memory SQLite) key table that counts its calls and can be made to fail like an unreachable database.</summary>
    private sealed class CountingTable : ApiKeyTable
    {
        private readonly Microsoft.Data.Sqlite.SqliteConnection _connection = new("Data Source=:memory:");

        public CountingTable()
        {
            _connection.Open();
            Execute(_connection, Schema);
        }

        public override string Name => "counting";

        public int Calls { get; private set; }

        public bool Failing { get; set; }

        protected override T WithConnection<T>(Func<System.Data.Common.DbConnection, T> work)
        {
            if (Failing)
            {
                throw new UnreachableDatabase();
            }

            Calls++;
            return work(_connection);
        }

        protected override void Dispose(bool disposing)
        {
            // Shared by the stores of a test; closed with the process.
        }
    }

    [Fact]
    public void A_key_table_of_an_earlier_version_gains_the_owner_id_column_and_pins_only_keys_without_one()
    {
        // The table as versions before owner pinning created it, with a key in it.
        const string OldSchema = """
            CREATE TABLE api_keys (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL, roles TEXT NOT NULL, groups_json TEXT NOT NULL,
                clearance TEXT, created_at TEXT NOT NULL, created_by TEXT NOT NULL, expires_at TEXT, revoked_at TEXT,
                revoked_by TEXT, secret_hash TEXT NOT NULL);
            INSERT INTO api_keys VALUES ('0123456789abcdef', 'job', 'Ada', '["appliance-user"]', '[]', NULL,
                '2026-11-28T12:00:00.0000000Z', 'admin', NULL, NULL, NULL, 'hash');
            """;
        var path = _folder.Combine("old.db");
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
        {
            connection.Open();
            using var create = connection.CreateCommand();
            create.CommandText = OldSchema;
            create.ExecuteNonQuery();
        }

        using var database = new TestPostgres();
        using (var connection = new Npgsql.NpgsqlConnection(database.ConnectionString))
        {
            connection.Open();
            using var create = connection.CreateCommand();
            create.CommandText = OldSchema;
            create.ExecuteNonQuery();
        }

        foreach (var store in new[] { Sqlite(path), new ApiKeyStore(new PostgresApiKeyTable(database.ConnectionString), Refresh, _time, NullLogger.Instance) })
        {
            using (store)
            {
                Assert.Null(store.Find("0123456789abcdef")!.OwnerId);
                var (id, _) = Issue(store, "ada");

                var (later, _) = Issue(store, "ada");
                Assert.Equal(2, store.PinOwner("ada", "kc-1", ["0123456789abcdef", id])); // owner names compare as Keycloak's do, without case
                Assert.Equal(0, store.PinOwner("ada", "kc-2", ["0123456789abcdef", id])); // a pinned key keeps its account
                Assert.Equal(0, store.PinOwner("bob", "kc-3", [later])); // only the owner's own keys
                Assert.Null(store.Find(later)!.OwnerId); // issued after the lookup: pinned by the next round
                Assert.Equal(("kc-1", "kc-1"), (store.Find("0123456789abcdef")!.OwnerId, store.Find(id)!.OwnerId));
            }
        }
    }

    private sealed class UnreachableDatabase() : System.Data.Common.DbException("the database cannot be reached");

    private ApiKeyStore Sqlite(string path) => new(new SqliteApiKeyTable(path), Refresh, _time, NullLogger.Instance);

    private static (string Id, string Key) Issue(ApiKeyStore store, string owner)
    {
        var (id, key, hash) = ApiKeySecret.Generate();
        store.Add(new ApiKeyRecord
        {
            Id = id, Name = "job", Owner = owner, Roles = ["appliance-user"], CreatedAt = Now, CreatedBy = "admin",
            ExpiresAt = Now.AddDays(1), SecretHash = hash,
        });
        return (id, key);
    }
}
