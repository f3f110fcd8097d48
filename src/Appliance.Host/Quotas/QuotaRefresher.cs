using Appliance.Api.Audit;
using Appliance.Audit.Stores;
using Appliance.Host.Options;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Quotas;

/// <summary>
/// Counts quotas from the audit log: this node's usage of the day at start (so a restart forgets nothing) and, when the
/// store is the shared PostgreSQL database, the other nodes' usage every refresh interval.
/// </summary>
internal sealed partial class QuotaRefresher(
    QuotaLedger ledger,
    IAuditReader audit,
    IOptions<AuditOptions> auditOptions,
    IOptions<QuotaOptions> options,
    TimeProvider time,
    ILogger<QuotaRefresher> logger) : BackgroundService
{
    private DateTimeOffset? _unseededSince; // when the start's read of this node's usage failed: tried again up to then

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Before the server takes requests: the counters start where the audit log says they are.
        if (auditOptions.Value.Enabled)
        {
            var started = time.GetUtcNow();
            if (!Read(onlyThisNode: true, before: null, (today, minute) => ledger.Seed(today, minute)))
            {
                _unseededSince = started;
            }
        }

        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var shared = auditOptions.Value.Enabled && auditOptions.Value.Store == "postgresql";
        if (!shared && _unseededSince is null)
        {
            return; // one node: its own counters are the whole truth
        }

        using var timer = new PeriodicTimer(options.Value.RefreshInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            var now = time.GetUtcNow();
            if (_unseededSince is { } started)
            {
                // This node's usage of the day before its start (what it counted since is in its own counters). On a
                // later day, nothing from before the start counts any more.
                if (QuotaWindow.DayOf(now) != QuotaWindow.DayOf(started)
                    || Read(onlyThisNode: true, before: started, (today, _) => ledger.Seed(today, [])))
                {
                    _unseededSince = null;
                    LogSeeded(logger);
                }
            }

            if (shared)
            {
                Read(onlyThisNode: false, before: null, (today, minute) => ledger.SetRemote(QuotaWindow.MinuteOf(now), QuotaWindow.DayOf(now), today, minute));
            }
            else if (_unseededSince is null)
            {
                return;
            }
        }
    }

    /// <summary>Reads and applies usage of the day and the minute; false (logged) when the store did not answer.</summary>
    private bool Read(bool onlyThisNode, DateTimeOffset? before, Action<IReadOnlyList<ConsumptionRow>, IReadOnlyList<ConsumptionRow>> apply)
    {
        var now = time.GetUtcNow();
        var (only, except) = onlyThisNode ? (audit.Node, (string?)null) : (null, audit.Node);
        try
        {
            apply(audit.Store.Consumption(QuotaWindow.DayOf(before ?? now), only, except, before),
                before is null ? audit.Store.Consumption(QuotaWindow.MinuteOf(now), only, except) : []);
            return true;
        }
        catch (Exception exception) when (exception is System.Data.Common.DbException or InvalidOperationException or TimeoutException)
        {
            // Quotas then count what this node knows until the store answers again; requests are not refused for it.
            LogReadFailed(logger, exception.Message);
            return false;
        }
    }

    [LoggerMessage(EventId = 5101, Level = LogLevel.Information, Message = "This node's quota usage of the day before its start was read from the audit store after all")]
    private static partial void LogSeeded(ILogger logger);

    [LoggerMessage(EventId = 5100, Level = LogLevel.Warning, Message = "Quota usage could not be read from the audit store; counting this node's requests only for now: {Reason}")]
    private static partial void LogReadFailed(ILogger logger, string reason);
}
