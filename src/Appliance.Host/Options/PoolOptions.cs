namespace Appliance.Host.Options;

/// <summary>
/// How the node shares its devices and engines (configuration "Pool"; the device list itself is
/// <see cref="Engine.Pool.DeviceInventoryOptions"/> in the same section).
/// </summary>
public sealed record PoolOptions
{
    public const string Section = "Pool";

    /// <summary>Placement strategy by name: spread (fewest replicas per device) or pack (tightest fit).</summary>
    public string Placement { get; init; } = "spread";

    /// <summary>Fair-queueing weight per tenant (the caller's team, from Audit:TeamClaim); unnamed tenants get <see cref="DefaultTenantWeight"/>.</summary>
    public Dictionary<string, double> TenantWeights { get; init; } = [];

    public double DefaultTenantWeight { get; init; } = 1;

    /// <summary>While both wait, at most this many interactive admissions before a batch one (service_tier "flex" is batch).</summary>
    public int InteractivePerBatch { get; init; } = 4;

    /// <summary>How long an unload or reload lets a model's running requests finish before it cancels them.</summary>
    public TimeSpan UnloadGracePeriod { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Longest one model run (a prefill chunk or a decoding step) may take before it is interrupted and its requests
    /// fail: a hung GPU or driver would otherwise hold its replica, and every unload, reload and shutdown, for good.
    /// </summary>
    public TimeSpan ModelRunTimeout { get; init; } = TimeSpan.FromMinutes(5);

    public IEnumerable<string> Validate()
    {
        if (!Engine.Pool.Placer.Strategies.Any(s => s.Name == Placement))
        {
            yield return $"Pool:Placement must be one of {string.Join(", ", Engine.Pool.Placer.Strategies.Select(s => s.Name))}";
        }

        if (DefaultTenantWeight <= 0 || TenantWeights.Values.Any(w => w <= 0))
        {
            yield return "Pool:TenantWeights and Pool:DefaultTenantWeight must be positive";
        }

        if (InteractivePerBatch < 1)
        {
            yield return "Pool:InteractivePerBatch must be at least 1";
        }

        if (UnloadGracePeriod < TimeSpan.Zero)
        {
            yield return "Pool:UnloadGracePeriod must not be negative";
        }

        if (ModelRunTimeout <= TimeSpan.Zero)
        {
            yield return "Pool:ModelRunTimeout must be positive";
        }
    }
}
