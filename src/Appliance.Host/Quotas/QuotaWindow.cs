namespace Appliance.Host.Quotas;

/// <summary>One caller's usage in the current UTC minute and day: this node's own, and the other nodes' last read.</summary>
internal sealed class QuotaWindow
{
    private DateTimeOffset _minute;
    private DateTimeOffset _day;
    private DateTimeOffset _remoteMinute;
    private DateTimeOffset _remoteDay;
    private long _minuteRequests;
    private long _minuteTokens;
    private long _dayTokens;
    private long _remoteMinuteRequests;
    private long _remoteMinuteTokens;
    private long _remoteDayTokens;

    public long Concurrent { get; set; }

    /// <summary>How the caller was last named and limited at admission (for the usage page).</summary>
    public (string Who, QuotaLimits Limits)? LastSeen { get; set; }

    public static DateTimeOffset MinuteOf(DateTimeOffset now) => new(now.Year, now.Month, now.Day, now.Hour, now.Minute, 0, TimeSpan.Zero);

    public static DateTimeOffset DayOf(DateTimeOffset now) => new(now.Year, now.Month, now.Day, 0, 0, 0, TimeSpan.Zero);

    public long MinuteRequests(DateTimeOffset now) => Roll(now)._minuteRequests + (_remoteMinute == MinuteOf(now) ? _remoteMinuteRequests : 0);

    public long MinuteTokens(DateTimeOffset now) => Roll(now)._minuteTokens + (_remoteMinute == MinuteOf(now) ? _remoteMinuteTokens : 0);

    public long DayTokens(DateTimeOffset now) => Roll(now)._dayTokens + (_remoteDay == DayOf(now) ? _remoteDayTokens : 0);

    public void AddRequest(DateTimeOffset now) => Roll(now)._minuteRequests++;

    /// <summary>Takes back a request counted at <paramref name="admittedAt"/> (it was never run), if its minute is still the current one.</summary>
    public void RemoveRequest(DateTimeOffset admittedAt, DateTimeOffset now)
    {
        if (MinuteOf(admittedAt) == Roll(now)._minute && _minuteRequests > 0)
        {
            _minuteRequests--;
        }
    }

    public void AddTokens(DateTimeOffset now, long tokens)
    {
        Roll(now);
        _minuteTokens += tokens;
        _dayTokens += tokens;
    }

    /// <summary>This node's usage as the audit log had it at start (minute figures only when taken in this minute).</summary>
    public void Seed(DateTimeOffset now, long dayTokens, long minuteRequests, long minuteTokens)
    {
        Roll(now);
        _dayTokens += dayTokens;
        _minuteRequests += minuteRequests;
        _minuteTokens += minuteTokens;
    }

    /// <summary>Replaces the other nodes' usage with a fresh read for the given windows.</summary>
    public void SetRemote(DateTimeOffset minute, DateTimeOffset day, long minuteRequests, long minuteTokens, long dayTokens)
    {
        (_remoteMinute, _remoteDay) = (minute, day);
        (_remoteMinuteRequests, _remoteMinuteTokens, _remoteDayTokens) = (minuteRequests, minuteTokens, dayTokens);
    }

    private QuotaWindow Roll(DateTimeOffset now)
    {
        var minute = MinuteOf(now);
        if (minute != _minute)
        {
            (_minute, _minuteRequests, _minuteTokens) = (minute, 0, 0);
        }

        var day = DayOf(now);
        if (day != _day)
        {
            (_day, _dayTokens) = (day, 0);
        }

        return this;
    }
}
