using System.Globalization;
using Appliance.Api.Batches;

namespace Appliance.Host.Batches;

/// <summary>
/// Runs one leased batch on this node: checks its input, sends its requests that have no answer yet (a batch taken over
/// from a node that stopped goes on where that node left it), then writes its output and error files. It holds the
/// lease while it works and stops when the batch is cancelled, expires, the lease is lost or the node stops.
/// </summary>
internal sealed partial class BatchExecution(
    IBatchStore store, InProcessRequests requests, BatchOptions options, string node, TimeProvider time, ILogger logger)
{
    private static readonly TimeSpan LongestPause = TimeSpan.FromMinutes(5);

    private enum Stop
    {
        None,
        Cancelled,
        Expired,
        LeaseLost,
        NodeStopping,
        NodeDraining,
    }

    private volatile int _stop; // a Stop
    private readonly Lock _pauseGate = new();
    private DateTimeOffset _pausedUntil;
    private TimeSpan _backoff = TimeSpan.FromSeconds(2);

    private Stop Stopped => (Stop)_stop;

    public async Task RunAsync(BatchJob job, CancellationToken stopping)
    {
        using var halt = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        using var watch = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        var watching = WatchAsync(job, halt, watch.Token);
        try
        {
            if (job.Status == BatchStatus.Validating)
            {
                job = await ValidateAsync(job, stopping);
            }

            if (job.Status == BatchStatus.InProgress && await InputAsync(job, stopping) is { } lines)
            {
                await SendAsync(job, lines, halt);
            }
        }
        finally
        {
            await watch.CancelAsync();
            await watching;
        }

        if (stopping.IsCancellationRequested)
        {
            StopFor(Stop.NodeStopping, halt);
        }

        if (Stopped is Stop.LeaseLost)
        {
            return; // another node has it now
        }

        if (Stopped is Stop.NodeStopping or Stop.NodeDraining)
        {
            // Handed on at once rather than after the lease runs out: another node (or this one, restarted) goes on.
            await store.ReleaseLeaseAsync(job.Id, node, CancellationToken.None);
            LogHandedOn(logger, job.Id, Stopped.ToString());
            return;
        }

        await FinishAsync(job, stopping);
        await store.ReleaseLeaseAsync(job.Id, node, CancellationToken.None);
    }

    private async Task<BatchJob> ValidateAsync(BatchJob job, CancellationToken cancellation)
    {
        var content = await store.FileContentAsync(job.InputFileId, cancellation);
        var (lines, errors) = content is null
            ? ([], [new BatchError("invalid_file", $"The input file {job.InputFileId} was deleted before the batch started.", "input_file_id")])
            : BatchInput.Read(content, options.MaxRequests, job.Endpoint);
        var now = time.GetUtcNow();
        if (errors.Count > 0)
        {
            var failed = job with { Status = BatchStatus.Failed, FailedAt = now, Errors = errors };
            if (await store.FinishAsync(failed, BatchStatus.Validating, [], cancellation))
            {
                LogFailedValidation(logger, job.Id, job.Owner, errors.Count, errors[0].Message);
                return failed;
            }
        }
        else
        {
            var running = job with { Status = BatchStatus.InProgress, InProgressAt = now, Total = lines.Count };
            if (await store.UpdateBatchAsync(running, BatchStatus.Validating, cancellation))
            {
                LogStarted(logger, job.Id, job.Owner, lines.Count, job.Endpoint);
                return running;
            }
        }

        return await store.BatchAsync(job.Id, cancellation) ?? job; // cancelled meanwhile
    }

    private async Task<List<BatchLine>?> InputAsync(BatchJob job, CancellationToken cancellation) =>
        await store.FileContentAsync(job.InputFileId, cancellation) is { } content ? BatchInput.Read(content, options.MaxRequests, job.Endpoint).Lines : null;

    private async Task SendAsync(BatchJob job, List<BatchLine> lines, CancellationTokenSource halt)
    {
        var answered = await store.ResultsAsync(job.Id, halt.Token);
        using var slots = new SemaphoreSlim(options.Concurrency);
        var running = new List<Task>();
        try
        {
            foreach (var line in lines.Where(l => !answered.ContainsKey(l.Line)))
            {
                await slots.WaitAsync(halt.Token);
                running.Add(Task.Run(async () =>
                {
                    try
                    {
                        await SendLineAsync(job, line, halt);
                    }
                    finally
                    {
                        slots.Release();
                    }
                }));
                running.RemoveAll(t => t.IsCompleted);
            }
        }
        catch (OperationCanceledException) when (halt.IsCancellationRequested)
        {
            // stopped: the lines not sent stay unanswered
        }

        await Task.WhenAll(running);
    }

    private async Task SendLineAsync(BatchJob job, BatchLine line, CancellationTokenSource halt)
    {
        try
        {
            while (true)
            {
                await PauseAsync(halt.Token);
                var answer = await requests.SendAsync(BatchCaller.For(job, line.Line, line.CustomId), line.Url, line.Body, job.SourceIp, halt.Token);
                if (halt.IsCancellationRequested)
                {
                    return; // answered as cancelled by our own stop: not an answer to keep
                }

                if (Code(answer) == "draining")
                {
                    StopFor(Stop.NodeDraining, halt);
                    return;
                }

                if (Transient(answer))
                {
                    Pause(answer);
                    continue;
                }

                lock (_pauseGate)
                {
                    _backoff = TimeSpan.FromSeconds(2);
                }

                await store.AddResultAsync(job.Id, line.Line, answer.Status >= 400, BatchOutput.Answered(line, answer), CancellationToken.None);
                return;
            }
        }
        catch (OperationCanceledException) when (halt.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Busy models (429 for too many waiting requests) and models or nodes not serving for now (503) are waited for,
    /// the whole batch pausing with a growing wait, rather than failing the request: a batch yields to callers.
    /// </summary>
    private static bool Transient(InProcessAnswer answer) =>
        answer.Status == StatusCodes.Status503ServiceUnavailable || (answer.Status == StatusCodes.Status429TooManyRequests && Code(answer) != "quota_exceeded");

    private void Pause(InProcessAnswer answer)
    {
        var retryAfter = int.TryParse(answer.Headers.RetryAfter.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) ? TimeSpan.FromSeconds(seconds) : TimeSpan.Zero;
        lock (_pauseGate)
        {
            var wait = retryAfter > _backoff ? retryAfter : _backoff;
            var until = time.GetUtcNow() + wait;
            if (until > _pausedUntil)
            {
                _pausedUntil = until;
                _backoff = _backoff * 2 < LongestPause ? _backoff * 2 : LongestPause;
            }
        }
    }

    private async Task PauseAsync(CancellationToken cancellation)
    {
        TimeSpan wait;
        lock (_pauseGate)
        {
            wait = _pausedUntil - time.GetUtcNow();
        }

        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, time, cancellation);
        }
    }

    private static string? Code(InProcessAnswer answer)
    {
        try
        {
            return System.Text.Json.Nodes.JsonNode.Parse(answer.Body)?["error"]?["code"]?.GetValue<string>();
        }
        catch (Exception exception) when (exception is System.Text.Json.JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>
    /// Keeps the lease (renewed at a third of its length) and looks at the batch's state every poll: a cancellation, the
    /// window's end or a lost lease stops the sending.
    /// </summary>
    private async Task WatchAsync(BatchJob job, CancellationTokenSource halt, CancellationToken done)
    {
        var renewEvery = options.LeaseDuration / 3;
        var renewed = time.GetUtcNow();
        try
        {
            while (!done.IsCancellationRequested)
            {
                await Task.Delay(options.PollInterval < renewEvery ? options.PollInterval : renewEvery, time, done);
                var now = time.GetUtcNow();
                if (now - renewed >= renewEvery)
                {
                    if (!await store.RenewLeaseAsync(job.Id, node, now + options.LeaseDuration, done))
                    {
                        LogLeaseLost(logger, job.Id);
                        StopFor(Stop.LeaseLost, halt);
                        return;
                    }

                    renewed = now;
                }

                if (now >= job.ExpiresAt)
                {
                    StopFor(Stop.Expired, halt);
                }
                else if ((await store.BatchAsync(job.Id, done))?.Status == BatchStatus.Cancelling)
                {
                    StopFor(Stop.Cancelled, halt);
                }
            }
        }
        catch (OperationCanceledException) when (done.IsCancellationRequested)
        {
        }
        catch (Exception exception)
        {
            // The store cannot be reached: stop sending, as the lease cannot be kept either.
            LogWatchFailed(logger, exception, job.Id);
            StopFor(Stop.LeaseLost, halt);
        }
    }

    private void StopFor(Stop reason, CancellationTokenSource halt)
    {
        Interlocked.CompareExchange(ref _stop, (int)reason, (int)Stop.None);
        halt.Cancel();
    }

    /// <summary>Writes the output and error files and the final state: completed, expired or cancelled.</summary>
    private async Task FinishAsync(BatchJob job, CancellationToken cancellation)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var current = await store.BatchAsync(job.Id, cancellation);
            if (current is null || current.Finished)
            {
                return;
            }

            var lines = await InputAsync(current, cancellation) ?? [];
            var results = await store.ResultsAsync(current.Id, cancellation);
            var now = time.GetUtcNow();
            var (status, code, why) = current.Status == BatchStatus.Cancelling ? (BatchStatus.Cancelled, "batch_cancelled", "The batch was cancelled before this request ran.")
                : now >= current.ExpiresAt && results.Count < lines.Count ? (BatchStatus.Expired, "batch_expired", "The batch's completion window ended before this request ran.")
                : (BatchStatus.Completed, (string?)null, (string?)null);
            if (code is null && results.Count < lines.Count)
            {
                return; // requests left without an answer and nothing stopped them: the next lease sends them
            }

            var expected = current.Status;
            if (current.Status == BatchStatus.InProgress)
            {
                // Finalizing first, as OpenAI shows it; a cancellation arriving now finds the batch no longer running.
                var finalizing = current with { Status = BatchStatus.Finalizing, FinalizingAt = now, Completed = results.Values.Count(r => !r.Error), Failed = results.Values.Count(r => r.Error) };
                if (!await store.UpdateBatchAsync(finalizing, BatchStatus.InProgress, cancellation))
                {
                    continue;
                }

                (current, expected) = (finalizing, BatchStatus.Finalizing);
            }

            var output = lines.Where(l => results.TryGetValue(l.Line, out var r) && !r.Error).Select(l => results[l.Line].Body).ToList();
            var errors = lines.Where(l => results.TryGetValue(l.Line, out var r) && r.Error).Select(l => results[l.Line].Body)
                .Concat(code is null ? [] : lines.Where(l => !results.ContainsKey(l.Line)).Select(l => BatchOutput.NotRun(l, code, why!))).ToList();
            var files = new List<(StoredFile, byte[])>();
            var outputFile = output.Count > 0 ? Add(files, current, "output", output) : null;
            var errorFile = errors.Count > 0 ? Add(files, current, "error", errors) : null;
            var final = current with
            {
                Status = status,
                CompletedAt = status == BatchStatus.Completed ? now : current.CompletedAt,
                ExpiredAt = status == BatchStatus.Expired ? now : current.ExpiredAt,
                CancelledAt = status == BatchStatus.Cancelled ? now : current.CancelledAt,
                OutputFileId = outputFile,
                ErrorFileId = errorFile,
                Completed = results.Values.Count(r => !r.Error),
                Failed = results.Values.Count(r => r.Error),
            };
            if (await store.FinishAsync(final, expected, files, cancellation))
            {
                LogFinished(logger, job.Id, job.Owner, status, final.Completed, final.Failed, final.Total);
                return;
            }
        }
    }

    private string Add(List<(StoredFile, byte[])> files, BatchJob job, string kind, List<string> lines)
    {
        var content = BatchOutput.File(lines);
        var file = new StoredFile(StoredFile.NewId(), job.Owner, StoredFile.BatchOutput, $"{job.Id}_{kind}.jsonl", content.Length, time.GetUtcNow());
        files.Add((file, content));
        return file.Id;
    }

    [LoggerMessage(EventId = 7001, Level = LogLevel.Information, Message = "Batch {BatchId} of {Owner} started: {Requests} requests to {Endpoint}")]
    private static partial void LogStarted(ILogger logger, string batchId, string owner, int requests, string endpoint);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Information, Message = "Batch {BatchId} of {Owner} failed validation with {Count} problem(s), the first: {First}")]
    private static partial void LogFailedValidation(ILogger logger, string batchId, string owner, int count, string first);

    [LoggerMessage(EventId = 7003, Level = LogLevel.Information, Message = "Batch {BatchId} of {Owner} ended {Status}: {Completed} answered, {Failed} failed, of {Total}")]
    private static partial void LogFinished(ILogger logger, string batchId, string owner, string status, int completed, int failed, int total);

    [LoggerMessage(EventId = 7004, Level = LogLevel.Warning, Message = "Batch {BatchId}: this node lost its lease (another node took the batch over, or the lease was not renewed in time); it stops sending")]
    private static partial void LogLeaseLost(ILogger logger, string batchId);

    [LoggerMessage(EventId = 7005, Level = LogLevel.Information, Message = "Batch {BatchId} handed on ({Reason}): another node, or this one once back, goes on with what is left")]
    private static partial void LogHandedOn(ILogger logger, string batchId, string reason);

    [LoggerMessage(EventId = 7006, Level = LogLevel.Error, Message = "Batch {BatchId}: its state could not be read or its lease renewed; the node stops sending and lets the lease run out")]
    private static partial void LogWatchFailed(ILogger logger, Exception exception, string batchId);
}
