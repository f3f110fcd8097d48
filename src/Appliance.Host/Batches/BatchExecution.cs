using System.Globalization;
using Appliance.Api.Batches;

namespace Appliance.Host.Batches;

/// <summary>
/// Runs one leased batch on this node: checks its input, sends its requests that have no answer yet (a batch taken over
/// from a node that stopped goes on where that node left it), then writes its output and error files. It holds the
/// lease while it works. A cancellation, the window's end, a refused credential or quota, or a drain stops the sending
/// and lets the requests under way finish; a lost lease or the node stopping also cuts those short.
/// </summary>
internal sealed partial class BatchExecution(
    IBatchStore store, InProcessRequests requests, BatchOptions options, long maxBodyBytes, string node, Func<bool> draining, BatchMetrics metrics, TimeProvider time, ILogger logger)
{
    private static readonly TimeSpan LongestPause = TimeSpan.FromMinutes(5);

    private static readonly TimeSpan TurnPoll = TimeSpan.FromMilliseconds(20);

    /// <summary>The longest wait for a quota that is kept on this node; longer, the batch is let go until the quota resets.</summary>
    private static readonly TimeSpan LongestWaitInPlace = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The most bytes of one output or error file: what SQLite (its default limit) and PostgreSQL (bytea) store in one
    /// value.
    /// </summary>
    private const long MostStoredBytes = 1_000_000_000;

    /// <summary>A request answered "busy" or "not serving" this many times is given its last answer as result.</summary>
    private const int MostAttempts = 8;

    /// <summary>After this many pauses in a row for "model not serving here", the batch goes to another node (or comes back later).</summary>
    private const int HandOverAfter = 3;

    private volatile int _stop; // a StopReason
    private volatile BatchError? _refusal;
    private readonly Lock _pauseGate = new();
    private DateTimeOffset _pausedUntil;
    private TimeSpan _backoff = TimeSpan.FromSeconds(2);
    private int _unavailableRounds;
    private int _inFlight;
    private int _limit = 1;
    private DateTimeOffset? _postponedUntil;
    private CancellationTokenSource? _abort; // cuts requests under way short: a lost lease, the node stopping
    private CancellationTokenSource? _sending; // stops sending more: any reason

    public StopReason Stopped => (StopReason)_stop;

    public async Task RunAsync(BatchJob job, CancellationToken stopping)
    {
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        using var sending = CancellationTokenSource.CreateLinkedTokenSource(abort.Token);
        (_abort, _sending) = (abort, sending);
        using var watchDone = new CancellationTokenSource();
        var watching = WatchAsync(job, watchDone.Token);
        try
        {
            if (time.GetUtcNow() >= job.ExpiresAt)
            {
                StopFor(StopReason.Expired); // its window ended while no node ran it: nothing more is sent
            }
            else if (job.Status == BatchStatus.Validating)
            {
                job = await ValidateAsync(job, stopping);
            }

            if (job.Status == BatchStatus.InProgress && Stopped == StopReason.None && await InputAsync(job, stopping) is { } lines)
            {
                await SendAsync(job, lines, sending.Token, abort);
            }

            if (Stopped is StopReason.LeaseLost)
            {
                return; // another node has it now
            }

            if (!stopping.IsCancellationRequested && Stopped is not (StopReason.NodeStopping or StopReason.NodeDraining or StopReason.HandedOver or StopReason.Postponed or StopReason.Yielded))
            {
                await FinishAsync(job, stopping); // the lease is still renewed meanwhile
                if (!stopping.IsCancellationRequested)
                {
                    await store.ReleaseLeaseAsync(job.Id, node, CancellationToken.None);
                    return;
                }
            }

            await HandOnAsync(job, stopping.IsCancellationRequested ? StopReason.NodeStopping : Stopped);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            await HandOnAsync(job, StopReason.NodeStopping);
        }
        finally
        {
            metrics.Left(0);
            await watchDone.CancelAsync();
            await watching;
        }
    }

    /// <summary>Requests this run got an answer to (the runner backs off a batch that makes no progress).</summary>
    public int Answered => _answered;

    private int _answered;

    /// <summary>
    /// Handed on at once rather than after the lease runs out: another node (or this one, later) goes on; a postponed
    /// batch, once its quota has reset.
    /// </summary>
    private async Task HandOnAsync(BatchJob job, StopReason why)
    {
        var notBefore = why == StopReason.Postponed ? _postponedUntil : null;
        await store.ReleaseLeaseAsync(job.Id, node, CancellationToken.None, notBefore);
        LogHandedOn(logger, job.Id, notBefore is { } at ? $"{why} until {at:u}" : why.ToString());
    }

    private async Task<BatchJob> ValidateAsync(BatchJob job, CancellationToken cancellation)
    {
        var content = await store.FileContentAsync(job.InputFileId, cancellation);
        var (lines, errors) = content is null
            ? ([], [new BatchError("invalid_file", $"The input file {job.InputFileId} was deleted before the batch started.", "input_file_id")])
            : BatchInput.Read(content, options.MaxRequests, maxBodyBytes, job.Endpoint);
        var now = time.GetUtcNow();
        if (errors.Count > 0)
        {
            var failed = job with { Status = BatchStatus.Failed, FailedAt = now, Errors = errors };
            if (await store.FinishAsync(failed, BatchStatus.Validating, [], node, cancellation))
            {
                metrics.Finished(failed.Status);
                LogFailedValidation(logger, job.Id, job.Owner, errors.Count, errors[0].Message);
                return failed;
            }
        }
        else
        {
            var running = job with { Status = BatchStatus.InProgress, InProgressAt = now, Total = lines.Count };
            if (await store.UpdateBatchAsync(running, BatchStatus.Validating, cancellation, node))
            {
                LogStarted(logger, job.Id, job.Owner, lines.Count, job.Endpoint);
                return running;
            }
        }

        return await store.BatchAsync(job.Id, cancellation) ?? job; // cancelled meanwhile
    }

    /// <summary>
    /// The input's requests as validated: read again without this node's limits, which may have been lowered since, or
    /// differ from the validating node's (a line dropped here would be neither sent nor reported).
    /// </summary>
    private async Task<List<BatchLine>?> InputAsync(BatchJob job, CancellationToken cancellation) =>
        await store.FileContentAsync(job.InputFileId, cancellation) is { } content ? BatchInput.Read(content, int.MaxValue, long.MaxValue, job.Endpoint).Lines : null;

    private async Task SendAsync(BatchJob job, List<BatchLine> lines, CancellationToken sending, CancellationTokenSource abort)
    {
        var answered = await store.AnsweredAsync(job.Id, abort.Token);
        metrics.Left(lines.Count(l => !answered.Contains(l.Line)));
        _limit = options.Concurrency;
        var running = new List<Task>();
        try
        {
            foreach (var line in lines.Where(l => !answered.Contains(l.Line)))
            {
                // A turn when fewer than the limit run (it may have been lowered to the creator's stream quota).
                while (Volatile.Read(ref _inFlight) >= Volatile.Read(ref _limit))
                {
                    await Task.Delay(TurnPoll, time, sending);
                }

                sending.ThrowIfCancellationRequested();
                Interlocked.Increment(ref _inFlight);
                running.Add(Task.Run(async () =>
                {
                    try
                    {
                        await SendLineAsync(job, line, sending, abort);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref _inFlight);
                    }
                }, CancellationToken.None));
                // Only those that ended well are dropped: a failure is kept for WhenAll to raise.
                running.RemoveAll(t => t.IsCompletedSuccessfully);
            }
        }
        catch (OperationCanceledException) when (sending.IsCancellationRequested)
        {
            // stopped: the lines not sent stay unanswered
        }

        await Task.WhenAll(running);
    }

    private async Task SendLineAsync(BatchJob job, BatchLine line, CancellationToken sending, CancellationTokenSource abort)
    {
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                await PauseAsync(sending);
                sending.ThrowIfCancellationRequested(); // stopped while this request waited for its turn
                // Once sent, a request runs to its end unless the lease is lost or the node stops.
                var answer = await requests.SendAsync(BatchCaller.For(job, line.Line, line.CustomId), line.Url, line.Body, job.SourceIp, job.Host, abort.Token);
                if (abort.IsCancellationRequested || answer.Status == InProcessRequests.Aborted)
                {
                    return; // cut short: sent again by whoever goes on
                }

                var code = Code(answer);
                if (code == "draining")
                {
                    StopFor(StopReason.NodeDraining);
                    return;
                }

                if (code == "quota_exceeded" && QuotaResetsAt(answer) is { } reset && reset < job.ExpiresAt)
                {
                    // A quota that resets within the window is waited for, not a try: here for a per-minute or
                    // concurrency quota; a longer wait (a daily one) lets the batch go until then, for other batches.
                    if (answer.Headers["X-Quota-Name"].ToString() == "concurrent_streams")
                    {
                        // Sends fewer at once from now on: the creator's stream quota, not the batch, sets the pace
                        // (each refused try is a refusal in the audit log).
                        LowerLimit();
                    }

                    if (reset - time.GetUtcNow() <= LongestWaitInPlace)
                    {
                        PauseUntil(reset);
                        metrics.Waited();
                        attempt--;
                        continue;
                    }

                    Postpone(reset);
                    metrics.Waited();
                    return;
                }

                if (code == "credentials_unverifiable")
                {
                    // The key table cannot be read: the key is not known to be revoked either. Waited for, not a try.
                    Pause(answer);
                    metrics.Waited();
                    attempt--;
                    continue;
                }

                if (answer.Status == StatusCodes.Status401Unauthorized || code == "quota_exceeded")
                {
                    // The creator's credential, or a quota that stays used up past the window: every other request
                    // would be refused alike. Not answered: the request did not run.
                    _refusal ??= answer.Status == StatusCodes.Status401Unauthorized
                        ? new BatchError("credential_refused", "The credential the batch was created with is no longer accepted (an API key revoked or expired, or its owner suspended); the requests without an answer were not run.")
                        : new BatchError("quota_exceeded", $"{Message(answer) ?? "A quota is used up."} It resets after the batch's window ends; the requests without an answer were not run.");
                    StopFor(StopReason.Refused);
                    return;
                }

                if (Transient(answer, code) && attempt < MostAttempts)
                {
                    if (Pause(answer) && code is "model_unavailable" or "model_loading" && Interlocked.Increment(ref _unavailableRounds) >= HandOverAfter)
                    {
                        StopFor(StopReason.HandedOver);
                        return;
                    }

                    metrics.Waited();
                    continue;
                }

                lock (_pauseGate)
                {
                    _backoff = TimeSpan.FromSeconds(2);
                }

                Interlocked.Exchange(ref _unavailableRounds, 0);
                await store.AddResultAsync(job.Id, line.Line, answer.Status >= 400, BatchOutput.Answered(line, answer), node, CancellationToken.None);
                Interlocked.Increment(ref _answered);
                metrics.Answered(answer.Status >= 400);
                metrics.AnsweredOne();
                return;
            }
        }
        catch (OperationCanceledException) when (sending.IsCancellationRequested || abort.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Busy models (429 for too many waiting requests) and models or nodes not serving for now (503, but a timeout,
    /// which the same request meets again) are waited for, the whole batch pausing with a growing wait, rather than
    /// failing the request: a batch yields to callers.
    /// </summary>
    private static bool Transient(InProcessAnswer answer, string? code) =>
        (answer.Status == StatusCodes.Status503ServiceUnavailable && code != "timeout") || (answer.Status == StatusCodes.Status429TooManyRequests && code != "quota_exceeded");

    /// <summary>
    /// Pauses the batch for the answer's Retry-After or the growing wait, whichever is longer; true when this starts a
    /// new pause (the answers of requests sent before it began join the pause under way).
    /// </summary>
    private bool Pause(InProcessAnswer answer)
    {
        var retryAfter = int.TryParse(answer.Headers.RetryAfter.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) ? TimeSpan.FromSeconds(seconds) : TimeSpan.Zero;
        lock (_pauseGate)
        {
            var now = time.GetUtcNow();
            if (now < _pausedUntil)
            {
                return false;
            }

            _pausedUntil = now + (retryAfter > _backoff ? retryAfter : _backoff);
            _backoff = _backoff * 2 < LongestPause ? _backoff * 2 : LongestPause;
            return true;
        }
    }

    private void PauseUntil(DateTimeOffset until)
    {
        lock (_pauseGate)
        {
            if (until > _pausedUntil)
            {
                _pausedUntil = until;
            }
        }
    }

    /// <summary>When the quota that refused the request resets (X-Quota-Reset, else Retry-After).</summary>
    private DateTimeOffset? QuotaResetsAt(InProcessAnswer answer) =>
        DateTimeOffset.TryParse(answer.Headers["X-Quota-Reset"].ToString(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var reset) ? reset
        : int.TryParse(answer.Headers.RetryAfter.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) ? time.GetUtcNow().AddSeconds(seconds)
        : null;

    private async Task PauseAsync(CancellationToken cancellation)
    {
        while (true)
        {
            TimeSpan wait;
            lock (_pauseGate)
            {
                wait = _pausedUntil - time.GetUtcNow();
            }

            if (wait <= TimeSpan.Zero)
            {
                return;
            }

            await Task.Delay(wait, time, cancellation); // and again, should the pause have grown meanwhile
        }
    }

    private void LowerLimit()
    {
        int current;
        do
        {
            current = Volatile.Read(ref _limit);
        }
        while (current > 1 && Interlocked.CompareExchange(ref _limit, current - 1, current) != current);
    }

    /// <summary>Stops sending until <paramref name="until"/>: the batch is let go, and no node takes it before then.</summary>
    private void Postpone(DateTimeOffset until)
    {
        lock (_pauseGate)
        {
            _postponedUntil = _postponedUntil is { } earlier && earlier < until ? earlier : until;
        }

        StopFor(StopReason.Postponed);
    }

    private static string? Code(InProcessAnswer answer) => ErrorField(answer, "code");

    private static string? Message(InProcessAnswer answer) => ErrorField(answer, "message");

    private static string? ErrorField(InProcessAnswer answer, string field)
    {
        try
        {
            return System.Text.Json.Nodes.JsonNode.Parse(answer.Body)?["error"]?[field]?.GetValue<string>();
        }
        catch (Exception exception) when (exception is System.Text.Json.JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>
    /// Keeps the lease (renewed at a third of its length) until the batch is finished, and looks at the batch's state
    /// every poll: a cancellation or the window's end stops the sending; a lost lease, or the batch moved on by another
    /// node, stops everything.
    /// </summary>
    private async Task WatchAsync(BatchJob job, CancellationToken done)
    {
        var renewEvery = options.LeaseDuration / 3;
        var renewed = time.GetUtcNow();
        var sliceEnds = renewed + options.TimeSlice;
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
                        StopFor(StopReason.LeaseLost);
                        return;
                    }

                    renewed = now;
                }

                var status = (await store.BatchAsync(job.Id, done))?.Status;
                if (status is null || BatchStatus.IsFinal(status))
                {
                    StopFor(StopReason.LeaseLost); // finished (or deleted) by another node
                }
                else if (now >= job.ExpiresAt)
                {
                    StopFor(StopReason.Expired);
                }
                else if (draining())
                {
                    StopFor(StopReason.NodeDraining);
                }
                else if (now >= sliceEnds && status == BatchStatus.InProgress)
                {
                    // Its turn is over when another batch waits: it lets go, and the one run least recently goes next.
                    sliceEnds = now + options.PollInterval * 10;
                    if (await store.OthersWaitAsync(job.Id, now, done))
                    {
                        StopFor(StopReason.Yielded);
                    }
                }
                else if (status == BatchStatus.Cancelling)
                {
                    StopFor(StopReason.Cancelled);
                }
            }
        }
        catch (OperationCanceledException) when (done.IsCancellationRequested)
        {
        }
        catch (Exception exception)
        {
            // The store cannot be reached: stop everything, as the lease cannot be kept either.
            LogWatchFailed(logger, exception, job.Id);
            StopFor(StopReason.LeaseLost);
        }
    }

    /// <summary>The first reason is kept. Every reason stops the sending; a lost lease or the node stopping also aborts.</summary>
    private void StopFor(StopReason reason)
    {
        Interlocked.CompareExchange(ref _stop, (int)reason, (int)StopReason.None);
        (reason is StopReason.LeaseLost or StopReason.NodeStopping ? _abort : _sending)?.Cancel();
    }

    /// <summary>
    /// Writes the output and error files and the final state: completed, expired, cancelled, or failed (a refusal, the
    /// input gone). A batch already finalizing (its node stopped while writing) is finished as it was decided.
    /// </summary>
    private async Task FinishAsync(BatchJob job, CancellationToken cancellation)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var current = await store.BatchAsync(job.Id, cancellation);
            if (current is null || current.Finished)
            {
                return;
            }

            var lines = await InputAsync(current, cancellation);
            var results = await store.ResultsAsync(current.Id, cancellation);
            var now = time.GetUtcNow();
            // Kept with the finalizing state, so that whoever finishes the batch after a stop knows it too.
            var refusal = _refusal ?? (current.Status == BatchStatus.Finalizing && current.Errors.Count > 0 ? current.Errors[0] : null);
            var missing = lines is null || results.Count < lines.Count;
            var (status, code, why) =
                current.Status == BatchStatus.Cancelling ? (BatchStatus.Cancelled, "batch_cancelled", "The batch was cancelled before this request ran.")
                : refusal is not null ? (BatchStatus.Failed, refusal.Code, refusal.Message)
                : lines is null ? (BatchStatus.Failed, "input_file_missing", "The batch's input file is gone.")
                : now >= current.ExpiresAt && missing ? (BatchStatus.Expired, "batch_expired", "The batch's completion window ended before this request ran.")
                : current.Status == BatchStatus.Finalizing && missing ? (BatchStatus.Completed, "not_sent", "This request was not sent.")
                : (BatchStatus.Completed, (string?)null, (string?)null);
            if (code is null && missing)
            {
                return; // requests left without an answer and nothing stopped them: the next lease sends them
            }

            refusal ??= lines is null ? new BatchError(code!, why!) : null;
            var expected = current.Status;
            if (current.Status == BatchStatus.InProgress)
            {
                // Finalizing first, as OpenAI shows it; a cancellation arriving now finds the batch no longer running.
                var finalizing = current with
                {
                    Status = BatchStatus.Finalizing,
                    FinalizingAt = now,
                    Errors = refusal is null ? current.Errors : [refusal],
                    Completed = results.Values.Count(r => !r.Error),
                    Failed = results.Values.Count(r => r.Error),
                };
                if (!await store.UpdateBatchAsync(finalizing, BatchStatus.InProgress, cancellation, node))
                {
                    continue;
                }

                (current, expected) = (finalizing, BatchStatus.Finalizing);
            }

            // The answers carry their custom_id: written in input order whatever is left of the input.
            var ordered = results.OrderBy(r => r.Key).ToList();
            var output = ordered.Where(r => !r.Value.Error).Select(r => r.Value.Body).ToList();
            var errors = ordered.Where(r => r.Value.Error).Select(r => r.Value.Body)
                .Concat(code is null || lines is null ? [] : lines.Where(l => !results.ContainsKey(l.Line)).Select(l => BatchOutput.NotRun(l, code, why!))).ToList();
            var files = new List<(StoredFile, byte[])>();
            var final = current with
            {
                Status = status,
                CompletedAt = status == BatchStatus.Completed ? now : current.CompletedAt,
                ExpiredAt = status == BatchStatus.Expired ? now : current.ExpiredAt,
                CancelledAt = status == BatchStatus.Cancelled ? now : current.CancelledAt,
                FailedAt = status == BatchStatus.Failed ? now : current.FailedAt,
                Errors = status == BatchStatus.Failed && refusal is not null ? [refusal] : current.Errors,
                Total = current.Total == 0 && lines is not null ? lines.Count : current.Total,
                OutputFileId = output.Count > 0 ? Add(files, current, "output", output) : null,
                ErrorFileId = errors.Count > 0 ? Add(files, current, "error", errors) : null,
                Completed = results.Values.Count(r => !r.Error),
                Failed = results.Values.Count(r => r.Error),
                Usage = BatchOutput.Usage(output),
            };
            if (files.FirstOrDefault(f => f.Item2.LongLength > MostStoredBytes) is { Item1: not null } tooLarge)
            {
                // Refused by the store at every try: the batch ends failed, saying so, rather than finished again and again.
                LogOutputNotStored(logger, job.Id, tooLarge.Item2.LongLength);
                final = final with
                {
                    Status = BatchStatus.Failed,
                    FailedAt = now,
                    CompletedAt = null,
                    ExpiredAt = current.ExpiredAt,
                    CancelledAt = current.CancelledAt,
                    OutputFileId = null,
                    ErrorFileId = null,
                    Errors = [new BatchError("output_not_stored", $"The batch's {tooLarge.Item1.Filename} would hold {tooLarge.Item2.LongLength} bytes, more than the {MostStoredBytes} one stored file may; split the input into smaller batches.")],
                };
                files.Clear();
            }

            // Any other failure (the database unreachable a moment) is thrown: the lease runs out, and finishing is tried again.
            if (await store.FinishAsync(final, expected, files, node, cancellation))
            {
                metrics.Finished(final.Status);
                LogFinished(logger, job.Id, job.Owner, final.Status, final.Completed, final.Failed, final.Total);
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

    [LoggerMessage(EventId = 7005, Level = LogLevel.Information, Message = "Batch {BatchId} handed on ({Reason}): another node, or this one later, goes on with what is left")]
    private static partial void LogHandedOn(ILogger logger, string batchId, string reason);

    [LoggerMessage(EventId = 7009, Level = LogLevel.Error, Message = "Batch {BatchId}: an output file of {Bytes} bytes is more than one stored file may hold; the batch ends failed")]
    private static partial void LogOutputNotStored(ILogger logger, string batchId, long bytes);

    [LoggerMessage(EventId = 7006, Level = LogLevel.Error, Message = "Batch {BatchId}: its state could not be read or its lease renewed; the node stops sending and lets the lease run out")]
    private static partial void LogWatchFailed(ILogger logger, Exception exception, string batchId);
}

/// <summary>Why a node stopped sending a batch's requests.</summary>
internal enum StopReason
{
    None,
    Cancelled,
    Expired,
    Refused,
    LeaseLost,
    NodeStopping,
    NodeDraining,
    HandedOver,
    Postponed,
    Yielded,
}
