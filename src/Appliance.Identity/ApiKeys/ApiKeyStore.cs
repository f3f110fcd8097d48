using System.Text.Json;

namespace Appliance.Identity.ApiKeys;

/// <summary>
/// API keys of one node, in a JSON file in the data folder (readable by the service user only), replaced atomically
/// on every change. Revocation takes effect on the next request. Several nodes behind a load balancer each keep their
/// own file until keys move into the shared database with the audit log.
/// </summary>
public sealed class ApiKeyStore
{
    public const string FileName = "api-keys.json";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    private readonly string _path;
    private readonly Lock _gate = new();
    private Dictionary<string, ApiKeyRecord> _keys;

    public ApiKeyStore(string folder)
    {
        Directory.CreateDirectory(folder);
        _path = Path.Combine(folder, FileName);
        _keys = File.Exists(_path)
            ? (JsonSerializer.Deserialize<List<ApiKeyRecord>>(File.ReadAllText(_path), Json) ?? []).ToDictionary(k => k.Id, StringComparer.Ordinal)
            : new Dictionary<string, ApiKeyRecord>(StringComparer.Ordinal);
    }

    public IReadOnlyList<ApiKeyRecord> All()
    {
        lock (_gate)
        {
            return [.. _keys.Values.OrderBy(k => k.CreatedAt)];
        }
    }

    public ApiKeyRecord? Find(string id)
    {
        lock (_gate)
        {
            return _keys.GetValueOrDefault(id);
        }
    }

    /// <summary>The active key a presented key text belongs to, or why there is none (for the log, not the caller).</summary>
    public (ApiKeyRecord? Record, string? Refusal) Authenticate(string presented, DateTimeOffset now)
    {
        if (ApiKeySecret.Parse(presented) is not { } parts)
        {
            return (null, "malformed API key");
        }

        if (Find(parts.Id) is not { } record || !ApiKeySecret.Matches(parts.Secret, record.SecretHash))
        {
            return (null, "unknown API key");
        }

        return record.RevokedAt is not null ? (null, $"revoked API key {record.Id} of {record.Owner}")
            : !record.IsActive(now) ? (null, $"expired API key {record.Id} of {record.Owner}")
            : (record, null);
    }

    public void Add(ApiKeyRecord record)
    {
        lock (_gate)
        {
            var keys = new Dictionary<string, ApiKeyRecord>(_keys, StringComparer.Ordinal) { [record.Id] = record };
            Save(keys);
            _keys = keys;
        }
    }

    /// <summary>Marks a key revoked; false when there is no such key. Revoking twice keeps the first revocation.</summary>
    public bool Revoke(string id, string revokedBy, DateTimeOffset now)
    {
        lock (_gate)
        {
            if (!_keys.TryGetValue(id, out var record))
            {
                return false;
            }

            if (record.RevokedAt is null)
            {
                var keys = new Dictionary<string, ApiKeyRecord>(_keys, StringComparer.Ordinal) { [id] = record with { RevokedAt = now, RevokedBy = revokedBy } };
                Save(keys);
                _keys = keys;
            }

            return true;
        }
    }

    private void Save(Dictionary<string, ApiKeyRecord> keys)
    {
        var temporary = _path + ".tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(keys.Values.OrderBy(k => k.CreatedAt).ToList(), Json));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.Move(temporary, _path, overwrite: true);
    }
}
