using System.Collections.Concurrent;
using System.Data.Common;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Appliance.Identity.ApiKeys;

/// <summary>
/// The API keys, kept in a table (a SQLite file on one node, the shared PostgreSQL in a cluster) and read through a
/// snapshot that every node rereads once it is <see cref="RefreshInterval"/> old. A key issued on one node works on
/// every node at once (an id the snapshot lacks is looked up in the table); a revocation applies at once on the node
/// that made it and on the others within the refresh interval plus one read of the table. A node that cannot reread
/// the table for twice the interval refuses every key until it can, so a revocation is never outrun by an outage.
/// </summary>
public sealed partial class ApiKeyStore : IDisposable
{
    /// <summary>The JSON file earlier versions kept the keys of one node in; imported into the table at start.</summary>
    public const string LegacyFileName = "api-keys.json";

    private const int MaxRememberedUnknown = 10_000;

    /// <summary>
    /// Lookups of ids not in the snapshot a node makes in one second. Random ids miss the snapshot and the remembered
    /// unknown ones alike, so without a limit a flood of them became as many queries on the shared database (the audit
    /// log's). A key issued on another node meanwhile works at the next refresh at the latest.
    /// </summary>
    private const int MaxLookupsPerSecond = 20;

    private static readonly TimeSpan LogThrottledEvery = TimeSpan.FromMinutes(1);
    private static readonly JsonSerializerOptions LegacyJson = new(JsonSerializerDefaults.Web);

    private readonly ApiKeyTable _table;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _refreshGate = new();
    private readonly ConcurrentDictionary<string, byte> _unknown = new(StringComparer.Ordinal);
    private volatile Dictionary<string, ApiKeyRecord> _keys;
    private long _loadedAt;
    private long _retryAt;
    private readonly Lock _lookupGate = new();
    private long _lookupSecond = -1;
    private int _lookupsThisSecond;
    private long _throttledLoggedAt = long.MinValue;

    public ApiKeyStore(ApiKeyTable table, TimeSpan refreshInterval, TimeProvider time, ILogger logger)
    {
        _table = table;
        RefreshInterval = refreshInterval;
        _time = time;
        _logger = logger;
        _keys = Load();
    }

    /// <summary>The longest a revocation made on another node takes to apply here.</summary>
    public TimeSpan RefreshInterval { get; }

    /// <summary>Where the keys are kept: "sqlite" or "postgresql".</summary>
    public string Backend => _table.Name;

    /// <summary>Every key, read from the table (the administrators' list is never stale).</summary>
    public IReadOnlyList<ApiKeyRecord> All() => _table.All();

    /// <summary>Records the Keycloak id of the owner's account on those of the given keys of the owner that have none yet.</summary>
    public int PinOwner(string owner, string ownerId, IReadOnlyList<string> keyIds) => _table.PinOwner(owner, ownerId, keyIds);

    /// <summary>Forgets the Keycloak account a key was pinned to; false when there is no such key.</summary>
    public bool UnpinOwner(string id) => _table.UnpinOwner(id);

    /// <summary>The key with this id, read from the table.</summary>
    public ApiKeyRecord? Find(string id) => _table.Find(id);

    /// <summary>
    /// The key as last read (the table is reread every <see cref="RefreshInterval"/>, as for a presented key), or
    /// <c>Unreadable</c> when the table could not be reread for twice that: a revocation may be pending.
    /// </summary>
    public (ApiKeyRecord? Record, bool Unreadable) Known(string id)
    {
        RefreshIfStale();
        if (Age > RefreshInterval * 2)
        {
            return (null, true);
        }

        // Null without being remembered as unknown: the lookup was put off (a flood of unknown ids) or failed.
        var record = Current(id);
        return record is null && !_unknown.ContainsKey(id) ? (null, true) : (record, false);
    }

    /// <summary>The active key a presented key text belongs to, or why there is none (for the log, not the caller).</summary>
    public (ApiKeyRecord? Record, string? Refusal) Authenticate(string presented, DateTimeOffset now)
    {
        if (ApiKeySecret.Parse(presented) is not { } parts)
        {
            return (null, "malformed API key");
        }

        RefreshIfStale();
        if (Age > RefreshInterval * 2)
        {
            return (null, $"the {_table.Name} API key table could not be reread for {RefreshInterval * 2}; keys are refused until it can (a revocation may be pending)");
        }

        if (Current(parts.Id) is not { } record || !ApiKeySecret.Matches(parts.Secret, record.SecretHash))
        {
            return (null, "unknown API key");
        }

        return record.RevokedAt is not null ? (null, $"revoked API key {record.Id} of {record.Owner}")
            : !record.IsActive(now) ? (null, $"expired API key {record.Id} of {record.Owner}")
            : (record, null);
    }

    /// <summary>Stores a new key (throws <see cref="DbException"/> when the table cannot be written).</summary>
    public void Add(ApiKeyRecord record)
    {
        // A key already there with this very secret is this insert, retried after its commit's answer was lost.
        if (!_table.Insert(record) && _table.Find(record.Id)?.SecretHash != record.SecretHash)
        {
            throw new InvalidOperationException($"an API key with id {record.Id} already exists");
        }

        Remember(record);
    }

    /// <summary>Marks a key revoked; false when there is no such key. Revoking twice keeps the first revocation.</summary>
    public bool Revoke(string id, string revokedBy, DateTimeOffset now)
    {
        if (_table.Find(id) is not { } record || !_table.Revoke(id, revokedBy, now))
        {
            return false;
        }

        // Effective here at once, not at the next refresh (and with no further read that could fail after the write).
        Remember(record.RevokedAt is null ? record with { RevokedAt = now, RevokedBy = revokedBy } : record);
        return true;
    }

    /// <summary>
    /// Moves the keys of an earlier version's JSON file (<see cref="LegacyFileName"/> in <paramref name="folder"/>) into
    /// the table, then renames the file so it is not read again. In a cluster every node brings its own file's keys, so
    /// a key issued on any node before the upgrade works on all of them after it; a key copied between nodes and
    /// revoked on one of them stays revoked, whichever file comes first. Returns how many keys were added or revoked.
    /// </summary>
    public int ImportLegacyFile(string folder)
    {
        var path = Path.Combine(folder, LegacyFileName);
        if (!File.Exists(path))
        {
            return 0;
        }

        var records = JsonSerializer.Deserialize<List<ApiKeyRecord>>(File.ReadAllText(path), LegacyJson) ?? [];
        var added = records.Count(_table.Import);
        File.Move(path, path + ".imported", overwrite: true);
        _keys = Load();
        LogImported(_logger, added, records.Count, path, _table.Name);
        return added;
    }

    public void Dispose() => _table.Dispose();

    private ApiKeyRecord? Current(string id)
    {
        if (_keys.TryGetValue(id, out var known))
        {
            return known;
        }

        if (_unknown.ContainsKey(id))
        {
            return null;
        }

        // Issued on another node since the last refresh, or not a key at all (remembered until the next refresh,
        // so that a flood of made-up ids does not turn into a flood of queries).
        if (!MayLookUp())
        {
            return null; // not remembered as unknown: looked up once the flood has passed
        }

        ApiKeyRecord? found;
        try
        {
            found = _table.Find(id);
        }
        catch (DbException exception)
        {
            LogLookupFailed(_logger, exception, _table.Name);
            return null;
        }

        if (found is null)
        {
            if (_unknown.Count >= MaxRememberedUnknown)
            {
                _unknown.Clear();
            }

            _unknown.TryAdd(id, 0);
            return null;
        }

        Remember(found);
        return found;
    }

    private bool MayLookUp()
    {
        var now = _time.GetTimestamp();
        var second = now / _time.TimestampFrequency;
        lock (_lookupGate)
        {
            if (second != _lookupSecond)
            {
                (_lookupSecond, _lookupsThisSecond) = (second, 0);
            }

            if (++_lookupsThisSecond <= MaxLookupsPerSecond)
            {
                return true;
            }

            if (_throttledLoggedAt == long.MinValue || _time.GetElapsedTime(_throttledLoggedAt) >= LogThrottledEvery)
            {
                _throttledLoggedAt = now;
                LogLookupsThrottled(_logger, MaxLookupsPerSecond);
            }

            return false;
        }
    }

    private TimeSpan Age => _time.GetElapsedTime(Interlocked.Read(ref _loadedAt));

    private void RefreshIfStale()
    {
        if (Age < RefreshInterval || _time.GetTimestamp() < Interlocked.Read(ref _retryAt))
        {
            return; // fresh, or the last attempt failed a moment ago
        }

        // Within twice the interval a request that finds another one refreshing goes on with the snapshot; beyond it
        // (after a long idle time, say) it waits for that read rather than be refused or answered from old data.
        if (Age <= RefreshInterval * 2)
        {
            if (!_refreshGate.TryEnter())
            {
                return;
            }
        }
        else
        {
            _refreshGate.Enter();
        }

        try
        {
            if (Age < RefreshInterval || _time.GetTimestamp() < Interlocked.Read(ref _retryAt))
            {
                return; // another request refreshed (or failed to) while this one waited
            }

            _keys = Load();
            _unknown.Clear();
        }
        catch (DbException exception)
        {
            // Answer from the snapshot while it is young enough, and try again in a second, not on every request.
            Interlocked.Exchange(ref _retryAt, _time.GetTimestamp() + _time.TimestampFrequency);
            LogRefreshFailed(_logger, exception, _table.Name);
        }
        finally
        {
            _refreshGate.Exit();
        }
    }

    private Dictionary<string, ApiKeyRecord> Load()
    {
        var keys = _table.All().ToDictionary(k => k.Id, StringComparer.Ordinal);
        Interlocked.Exchange(ref _loadedAt, _time.GetTimestamp());
        return keys;
    }

    private void Remember(ApiKeyRecord record)
    {
        lock (_refreshGate)
        {
            // A lookup that read the key before a revocation on this node must not bring it back to life.
            if (_keys.TryGetValue(record.Id, out var known) && known.RevokedAt is not null && record.RevokedAt is null)
            {
                return;
            }

            _keys = new Dictionary<string, ApiKeyRecord>(_keys, StringComparer.Ordinal) { [record.Id] = record };
            _unknown.TryRemove(record.Id, out _);
        }
    }

    [LoggerMessage(EventId = 3040, Level = LogLevel.Warning, Message = "More than {Limit} unknown API key ids a second (a flood of made-up keys?): the others are refused without a lookup until the next second; the flood guard names the addresses")]
    private static partial void LogLookupsThrottled(ILogger logger, int limit);

    [LoggerMessage(EventId = 3030, Level = LogLevel.Information, Message = "Imported {Added} of {Total} API keys from {Path} into the {Backend} key table; the file was renamed to .imported")]
    private static partial void LogImported(ILogger logger, int added, int total, string path, string backend);

    [LoggerMessage(EventId = 3031, Level = LogLevel.Warning, Message = "Could not refresh the API keys from the {Backend} key table; answering from the last snapshot")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception, string backend);

    [LoggerMessage(EventId = 3032, Level = LogLevel.Warning, Message = "Could not look up an API key in the {Backend} key table; the key is refused")]
    private static partial void LogLookupFailed(ILogger logger, Exception exception, string backend);
}
