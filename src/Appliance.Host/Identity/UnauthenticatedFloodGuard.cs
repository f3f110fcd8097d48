using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;

namespace Appliance.Host.Identity;

/// <summary>
/// Limits requests without valid credentials per client address, before they reach the audit writer: each client
/// address may fail authentication <see cref="IdentityOptions.UnauthenticatedPerMinute"/> times a minute; beyond that
/// its requests without credentials are answered 429 at once (nothing authenticated, nothing written), those whose
/// credentials fail are answered 429 too, and none is recorded one by one. One in <see cref="SampleEvery"/> of the refusals is recorded, saying how many were
/// not, and all are counted in /metrics. Callers with valid credentials behind the same address are never affected.
/// </summary>
internal sealed class UnauthenticatedFloodGuard : IDisposable
{
    public const int SampleEvery = 100;

    /// <summary>Marks a request the guard refused after its credentials failed (HttpContext.Items key).</summary>
    public const string RefusedItem = "appliance.flood-refused";
    private const int MaxTrackedAddresses = 10_000;

    private readonly PartitionedRateLimiter<string> _failures;
    private readonly ConcurrentDictionary<string, long> _suppressed = new(StringComparer.Ordinal);
    private long _throttledTotal;

    private readonly bool _enabled;

    /// <param name="perMinute">Failed authentications per address and minute; 0 turns the guard off.</param>
    public UnauthenticatedFloodGuard(int perMinute)
    {
        _enabled = perMinute > 0;
        // The built-in fixed-window limiter, one partition per address; idle partitions are dropped by the limiter.
        _failures = PartitionedRateLimiter.Create<string, string>(address => RateLimitPartition.GetFixedWindowLimiter(address, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = Math.Max(perMinute, 1),
            Window = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
        }));
    }

    /// <summary>
    /// The client the guard counts by (the real client behind trusted proxies): an IPv4 address, or an IPv6 client's /64
    /// network, because one host is routinely given a whole /64 and could otherwise rotate through 2^64 addresses.
    /// </summary>
    public static string AddressOf(HttpContext http) => ClientKeyOf(http.Connection.RemoteIpAddress);

    public static string ClientKeyOf(IPAddress? address)
    {
        if (address is null)
        {
            return "unknown";
        }

        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4().ToString();
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6 || IPAddress.IsLoopback(address))
        {
            return address.ToString();
        }

        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return $"{new IPAddress(bytes)}/64";
    }

    /// <summary>Requests refused or not recorded by this guard since the start.</summary>
    public long ThrottledTotal => Interlocked.Read(ref _throttledTotal);

    /// <summary>Whether the address has used up its failures for this minute (a check: it takes nothing).</summary>
    public bool IsThrottled(string address) => _enabled && _failures.GetStatistics(address)?.CurrentAvailablePermits <= 0;

    /// <summary>Counts a failed authentication; false when the address is over its limit (the refusal is one of a flood).</summary>
    public bool RecordFailure(string address)
    {
        if (!_enabled)
        {
            return true;
        }

        using var lease = _failures.AttemptAcquire(address);
        return lease.IsAcquired;
    }

    /// <summary>
    /// Counts a refusal that is not recorded by itself. Returns how many went unrecorded from this address before it
    /// when this one is to be recorded as the sample, else null.
    /// </summary>
    public long? Throttled(string address)
    {
        Interlocked.Increment(ref _throttledTotal);
        if (_suppressed.Count >= MaxTrackedAddresses && !_suppressed.ContainsKey(address))
        {
            _suppressed.Clear(); // a flood from very many addresses: forget the counts rather than grow without bound
        }

        var count = _suppressed.AddOrUpdate(address, 1, (_, n) => n + 1);
        return count % SampleEvery == 1 ? count - 1 : null;
    }

    public void Dispose() => _failures.Dispose();
}
