using Appliance.Host.Quotas;

namespace Appliance.IntegrationTests.Pool;

/// <summary>The fixed UTC windows behind quotas: a minute and a day roll over on the boundary, and other nodes' figures count only in their window.</summary>
public sealed class QuotaWindowTests
{
    private static readonly DateTimeOffset Morning = new(2026, 11, 28, 9, 15, 42, TimeSpan.Zero);

    [Fact]
    public void Minute_figures_reset_on_the_minute_and_day_figures_at_utc_midnight()
    {
        var window = new QuotaWindow();
        window.AddRequest(Morning);
        window.AddTokens(Morning, 100);

        Assert.Equal((1, 100, 100), (window.MinuteRequests(Morning), window.MinuteTokens(Morning), window.DayTokens(Morning)));
        var nextMinute = Morning.AddSeconds(18);
        Assert.Equal((0, 0, 100), (window.MinuteRequests(nextMinute), window.MinuteTokens(nextMinute), window.DayTokens(nextMinute)));
        var nextDay = new DateTimeOffset(2026, 11, 29, 0, 0, 0, TimeSpan.Zero);
        Assert.Equal(0, window.DayTokens(nextDay));
    }

    [Fact]
    public void Other_nodes_usage_counts_in_the_window_it_was_read_for()
    {
        var window = new QuotaWindow();
        window.AddTokens(Morning, 10);
        window.SetRemote(QuotaWindow.MinuteOf(Morning), QuotaWindow.DayOf(Morning), minuteRequests: 3, minuteTokens: 40, dayTokens: 500);

        Assert.Equal((3, 50, 510), (window.MinuteRequests(Morning), window.MinuteTokens(Morning), window.DayTokens(Morning)));
        var later = Morning.AddMinutes(1);
        Assert.Equal((0, 0, 510), (window.MinuteRequests(later), window.MinuteTokens(later), window.DayTokens(later))); // stale minute ignored
    }

    [Fact]
    public void Overrides_keep_the_defaults_for_limits_they_do_not_set()
    {
        var defaults = new QuotaLimits { TokensPerMinute = 1000, ConcurrentStreams = 4 };
        var merged = new QuotaLimits { ConcurrentStreams = 1 }.Over(defaults);

        Assert.Equal((1000L, 1L), (merged.TokensPerMinute!.Value, merged.ConcurrentStreams!.Value));
        Assert.Contains("Quotas:Users:ada:TokensPerDay must not be negative",
            new QuotaOptions { Users = new() { ["ada"] = new QuotaLimits { TokensPerDay = -1 } } }.Validate());
    }
}
