using Appliance.Api.Admin;
using Appliance.Api.Batches;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Batches;

/// <summary>
/// Each node runs batches, one at a time: it takes the oldest open batch that no node holds, runs it, and looks again.
/// In a cluster the nodes share the work through the store's leases. Old batches and files are deleted once an hour.
/// </summary>
internal sealed partial class BatchRunner(
    IBatchStore store, InProcessRequests requests, IOptions<BatchOptions> options, IOptions<Api.OpenAi.ApiLimits> limits, IOptions<Options.AuditOptions> audit,
    IHostApplicationLifetime lifetime, DrainGate drain, Models.ModelCatalog catalog, BatchMetrics metrics, TimeProvider time, ILogger<BatchRunner> logger) : BackgroundService
{
    private static readonly TimeSpan CleanupEvery = TimeSpan.FromHours(1);

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        var settings = options.Value;
        // Unique per process: a node restarted takes its own batch over once the old lease runs out (or at once, when
        // the stopping node released it).
        var node = $"{(string.IsNullOrWhiteSpace(audit.Value.NodeId) ? Environment.MachineName : audit.Value.NodeId)}/{Guid.NewGuid():N}";
        try
        {
            // Requests enter through the server, which must be listening first.
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
            {
                await started.Task.WaitAsync(stopping);
            }

            var cleanup = time.GetUtcNow();
            var avoid = new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal);
            while (!stopping.IsCancellationRequested)
            {
                try
                {
                    var now = time.GetUtcNow();
                    if (settings.RetentionDays > 0 && now >= cleanup)
                    {
                        var (batches, files) = await store.DeleteOlderThanAsync(now - TimeSpan.FromDays(settings.RetentionDays), stopping);
                        if (batches + files > 0)
                        {
                            LogDeleted(logger, batches, files, settings.RetentionDays);
                        }

                        cleanup = now + CleanupEvery;
                    }

                    // A draining node takes no batch: its work goes to the nodes that stay.
                    foreach (var expired in avoid.Where(a => a.Value <= now).Select(a => a.Key).ToList())
                    {
                        avoid.Remove(expired);
                    }

                    // Nor one before the models declared at start have been tried: its requests would find none.
                    if (!drain.Draining && catalog.StartupComplete && await store.LeaseNextAsync(node, now, now + settings.LeaseDuration, avoid.Keys, stopping) is { } job)
                    {
                        var execution = new BatchExecution(store, requests, settings, limits.Value.MaxBodyBytes, node, () => drain.Draining, metrics, time, logger);
                        try
                        {
                            await execution.RunAsync(job, stopping);
                        }
                        finally
                        {
                            // Its model does not serve here now, or the run got nowhere (the store failing, a batch that
                            // cannot be finished): other batches, and other nodes, get their turn first for a while.
                            if (execution.Stopped == StopReason.HandedOver || (execution.Answered == 0 && await StillOpenAsync(job.Id)))
                            {
                                avoid[job.Id] = time.GetUtcNow() + settings.LeaseDuration;
                            }
                        }

                        continue;
                    }
                }
                catch (Exception exception) when (!stopping.IsCancellationRequested)
                {
                    LogFailed(logger, exception);
                }

                await Task.Delay(settings.PollInterval, time, stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // stopping
        }
    }

    private async Task<bool> StillOpenAsync(string id)
    {
        try
        {
            return await store.BatchAsync(id, CancellationToken.None) is { Finished: false };
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            return true;
        }
    }

    [LoggerMessage(EventId = 7000, Level = LogLevel.Error, Message = "Running batches failed (the batch store cannot be reached?); this node tries again at the next poll")]
    private static partial void LogFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 7007, Level = LogLevel.Information, Message = "Deleted {Batches} finished batch(es) and {Files} file(s) older than {Days} days (Batches:RetentionDays)")]
    private static partial void LogDeleted(ILogger logger, int batches, int files, int days);
}
