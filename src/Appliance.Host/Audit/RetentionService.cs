using Appliance.Audit;
using Appliance.Audit.Chain;
using Appliance.Host.Options;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Audit;

/// <summary>Applies Audit:Retention now and then: removes sealed segments older than it, signs what was removed, and says so in the chain.</summary>
internal sealed partial class RetentionService(AuditLog log, CheckpointSigner signer, IOptions<AuditOptions> options, TimeProvider time, ILogger<RetentionService> logger)
    : BackgroundService
{
    private static readonly TimeSpan PauseBetweenSteps = TimeSpan.FromMilliseconds(200);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        using var timer = new PeriodicTimer(settings.RetentionCheckInterval, time);
        while (true)
        {
            try
            {
                // Step by step, each its own signed record and entry, with a pause between for the requests' appends.
                var now = time.GetUtcNow();
                while (AuditRetention.Apply(log.Store, signer, log.Node, now - settings.Retention!.Value, now) is { } record)
                {
                    LogRemoved(logger, record.RemovedEntries, record.ThroughSequence);
                    await log.RecordAsync(new AuditRecord
                    {
                        Time = now,
                        Kind = AuditKinds.Retention,
                        Detail = $"removed {record.RemovedEntries} entries through {record.ThroughSequence} (older than {settings.Retention})",
                    });
                    await Task.Delay(PauseBetweenSteps, time, stoppingToken);
                    now = time.GetUtcNow();
                }

                // Chains no node writes any more; what was removed is said in this node's chain.
                foreach (var (chain, record) in AuditRetention.IdleChainSteps(log.Store, signer, log.Node, now - settings.Retention!.Value, now))
                {
                    LogRemovedFromIdleChain(logger, record.RemovedEntries, chain, record.ThroughSequence);
                    await log.RecordAsync(new AuditRecord
                    {
                        Time = time.GetUtcNow(),
                        Kind = AuditKinds.Retention,
                        Detail = $"removed {record.RemovedEntries} entries of node {chain}'s chain, which no node writes any more, through {record.ThroughSequence} (older than {settings.Retention})",
                    });
                    await Task.Delay(PauseBetweenSteps, time, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception exception) when (exception is not OperationCanceledException)
            {
                LogFailed(logger, exception);
            }

            try
            {
                if (!await timer.WaitForNextTickAsync(stoppingToken))
                {
                    return;
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [LoggerMessage(EventId = 4022, Level = LogLevel.Information, Message = "Audit retention removed {Count} entries through {Sequence}; a signed retention record keeps what was removed")]
    private static partial void LogRemoved(ILogger logger, long count, long sequence);

    [LoggerMessage(EventId = 4023, Level = LogLevel.Information, Message = "Audit retention removed {Count} entries of node {Chain}'s chain, which no node writes any more, through {Sequence}; a signed retention record keeps what was removed")]
    private static partial void LogRemovedFromIdleChain(ILogger logger, long count, string chain, long sequence);

    [LoggerMessage(EventId = 4021, Level = LogLevel.Error, Message = "Audit retention failed; it is tried again at the next interval")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
