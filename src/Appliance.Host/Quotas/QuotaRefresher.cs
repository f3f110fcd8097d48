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
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Before the server takes requests: the counters start where the audit log says they are.
        if (auditOptions.Value.Enabled)
        {
            Read(onlyThisNode: true, (today, minute) => ledger.Seed(today, minute));
        }

        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!auditOptions.Value.Enabled || auditOptions.Value.Store != "postgresql")
        {
            return; // one node: its own counters are the whole truth
        }

        using var timer = new PeriodicTimer(options.Value.RefreshInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            var now = time.GetUtcNow();
            Read(onlyThisNode: false, (today, minute) => ledger.SetRemote(QuotaWindow.MinuteOf(now), QuotaWindow.DayOf(now), today, minute));
        }
    }

    private void Read(bool onlyThisNode, Action<IReadOnlyList<ConsumptionRow>, IReadOnlyList<ConsumptionRow>> apply)
    {
        var now = time.GetUtcNow();
        var (only, except) = onlyThisNode ? (audit.Node, (string?)null) : (null, audit.Node);
        try
        {
            apply(audit.Store.Consumption(QuotaWindow.DayOf(now), only, except), audit.Store.Consumption(QuotaWindow.MinuteOf(now), only, except));
        }
        catch (Exception exception) when (exception is System.Data.Common.DbException or InvalidOperationException or TimeoutException)
        {
            // Quotas then count this node alone until the store answers again; requests are not refused for it.
            LogReadFailed(logger, exception.Message);
        }
    }

    [LoggerMessage(EventId = 5100, Level = LogLevel.Warning, Message = "Quota usage could not be read from the audit store; counting this node's requests only for now: {Reason}")]
    private static partial void LogReadFailed(ILogger logger, string reason);
}
