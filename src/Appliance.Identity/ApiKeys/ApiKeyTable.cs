using System.Data.Common;
using System.Globalization;
using System.Text.Json;

namespace Appliance.Identity.ApiKeys;

/// <summary>
/// The api_keys table in plain SQL that SQLite and PostgreSQL both accept: one row per key, its secret's hash and
/// never the secret. Times are ISO 8601 text, as in the audit tables.
/// </summary>
public abstract class ApiKeyTable : IDisposable
{
    private const string Columns = "id, name, owner, roles, groups_json, clearance, created_at, created_by, expires_at, revoked_at, revoked_by, secret_hash, owner_id";

    protected const string Schema = """
        CREATE TABLE IF NOT EXISTS api_keys (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL, roles TEXT NOT NULL, groups_json TEXT NOT NULL,
            clearance TEXT, created_at TEXT NOT NULL, created_by TEXT NOT NULL, expires_at TEXT, revoked_at TEXT,
            revoked_by TEXT, secret_hash TEXT NOT NULL, owner_id TEXT);
        """;

    /// <summary>The column a table of an earlier version lacks (owner_id came with owner checks).</summary>
    protected const string OwnerIdColumn = "owner_id";

    /// <summary>"sqlite" or "postgresql", for messages.</summary>
    public abstract string Name { get; }

    protected abstract T WithConnection<T>(Func<DbConnection, T> work);

    public IReadOnlyList<ApiKeyRecord> All() => WithConnection(connection =>
    {
        using var command = Command(connection, $"SELECT {Columns} FROM api_keys ORDER BY created_at, id");
        return (IReadOnlyList<ApiKeyRecord>)[.. Read(command)];
    });

    public ApiKeyRecord? Find(string id) => WithConnection(connection =>
    {
        using var command = Command(connection, $"SELECT {Columns} FROM api_keys WHERE id = @id", ("id", id));
        return Read(command).FirstOrDefault();
    });

    /// <summary>Stores a new key; false when one with its id is already there.</summary>
    public bool Insert(ApiKeyRecord r) => Write(r, "ON CONFLICT (id) DO NOTHING");

    /// <summary>
    /// Stores a key of an earlier version's file: a new one is added; one already there (the same key copied to
    /// another node's file) takes the revocation of either copy. False when nothing changed.
    /// </summary>
    public bool Import(ApiKeyRecord r) => Write(r,
        "ON CONFLICT (id) DO UPDATE SET revoked_at = COALESCE(api_keys.revoked_at, excluded.revoked_at), "
        + "revoked_by = COALESCE(api_keys.revoked_by, excluded.revoked_by) "
        + "WHERE api_keys.secret_hash = excluded.secret_hash AND api_keys.revoked_at IS NULL AND excluded.revoked_at IS NOT NULL");

    private bool Write(ApiKeyRecord r, string onConflict) => WithConnection(connection =>
    {
        using var command = Command(connection,
            $"INSERT INTO api_keys ({Columns}) VALUES (@id, @name, @owner, @roles, @groups, @clearance, @created, @createdBy, @expires, @revoked, @revokedBy, @hash, @ownerId) "
            + onConflict,
            ("id", r.Id), ("name", r.Name), ("owner", r.Owner), ("roles", JsonSerializer.Serialize(r.Roles)), ("groups", JsonSerializer.Serialize(r.Groups)),
            ("clearance", r.Clearance), ("created", Time(r.CreatedAt)), ("createdBy", r.CreatedBy), ("expires", Time(r.ExpiresAt)),
            ("revoked", Time(r.RevokedAt)), ("revokedBy", r.RevokedBy), ("hash", r.SecretHash), ("ownerId", r.OwnerId));
        return command.ExecuteNonQuery() == 1;
    });

    /// <summary>
    /// Records the Keycloak id of <paramref name="owner"/>'s account on those of <paramref name="keyIds"/> that are the
    /// owner's and have none yet (a key already pinned keeps its id; a key issued after the account was looked up is not
    /// touched). Returns how many keys were pinned.
    /// </summary>
    public int PinOwner(string owner, string ownerId, IReadOnlyList<string> keyIds) => WithConnection(connection =>
    {
        var pinned = 0;
        foreach (var id in keyIds)
        {
            using var command = Command(connection, "UPDATE api_keys SET owner_id = @ownerId WHERE id = @id AND lower(owner) = lower(@owner) AND owner_id IS NULL",
                ("ownerId", ownerId), ("id", id), ("owner", owner));
            pinned += command.ExecuteNonQuery();
        }

        return pinned;
    });

    /// <summary>Forgets the Keycloak account a key was pinned to (the next owner check pins the owner's current one); false when there is no such key.</summary>
    public bool UnpinOwner(string id) => WithConnection(connection =>
    {
        using var command = Command(connection, "UPDATE api_keys SET owner_id = NULL WHERE id = @id", ("id", id));
        return command.ExecuteNonQuery() == 1;
    });

    /// <summary>Marks a key revoked unless it already is (the first revocation stands); false when there is no such key.</summary>
    public bool Revoke(string id, string revokedBy, DateTimeOffset now) => WithConnection(connection =>
    {
        using (var update = Command(connection, "UPDATE api_keys SET revoked_at = @now, revoked_by = @by WHERE id = @id AND revoked_at IS NULL",
            ("now", Time(now)), ("by", revokedBy), ("id", id)))
        {
            if (update.ExecuteNonQuery() == 1)
            {
                return true;
            }
        }

        using var exists = Command(connection, "SELECT 1 FROM api_keys WHERE id = @id", ("id", id));
        return exists.ExecuteScalar() is not null;
    });

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected abstract void Dispose(bool disposing);

    protected static void Execute(DbConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    protected static DbCommand Command(DbConnection connection, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }

        return command;
    }

    private static string? Time(DateTimeOffset? time) => time?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    private static DateTimeOffset? ParseTime(DbDataReader reader, int column) => reader.IsDBNull(column)
        ? null
        : DateTimeOffset.ParseExact(reader.GetString(column), "yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    private static string? Text(DbDataReader reader, int column) => reader.IsDBNull(column) ? null : reader.GetString(column);

    private static IEnumerable<ApiKeyRecord> Read(DbCommand command)
    {
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            yield return new ApiKeyRecord
            {
                Id = reader.GetString(0),
                Name = reader.GetString(1),
                Owner = reader.GetString(2),
                Roles = JsonSerializer.Deserialize<string[]>(reader.GetString(3)) ?? [],
                Groups = JsonSerializer.Deserialize<string[]>(reader.GetString(4)) ?? [],
                Clearance = Text(reader, 5),
                CreatedAt = ParseTime(reader, 6)!.Value,
                CreatedBy = reader.GetString(7),
                ExpiresAt = ParseTime(reader, 8),
                RevokedAt = ParseTime(reader, 9),
                RevokedBy = Text(reader, 10),
                SecretHash = reader.GetString(11),
                OwnerId = Text(reader, 12),
            };
        }
    }
}
