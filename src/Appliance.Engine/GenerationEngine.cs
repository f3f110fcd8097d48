using System.Collections.Concurrent;
using System.Threading.Channels;
using Appliance.Engine.KvCache;
using Appliance.Engine.Output;
using Appliance.Engine.Requests;
using Appliance.Engine.Sampling;
using Appliance.Engine.Scheduling;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Engine;

/// <summary>
/// One model's engine: a dedicated thread runs steps (schedule, execute, update) over a continuously changing batch.
/// Requests arrive through <see cref="Submit"/> from any thread and read their own stream of deltas.
/// </summary>
public sealed class GenerationEngine : IEngineClient, IDisposable
{
    private readonly IModelRunner _runner;
    private readonly SchedulerOptions _options;
    private readonly ILogger _logger;
    private readonly Random _seedSource;
    private Scheduler _scheduler; // replaced, with the KV cache bookkeeping, when the loop restarts after a crash
    private readonly PrefixCache? _prefix;
    private readonly TokenSampler _sampler;
    private readonly ConcurrentQueue<Sequence> _incoming = new();
    private readonly SemaphoreSlim _wakeUp = new(0);
    private readonly Thread _thread;
    private KvCacheManager _kvCache;
    private readonly IReadOnlySet<int> _stopTokenIds;
    private long _nextSequenceId;
    private int _queued;
    private int _running;
    private readonly ServiceRate _serviceRate;
    private int _kvUsedTokens;
    private long _cancelledRequests;
    private long _draftedTokens;
    private long _acceptedTokens;
    private bool _speculationFailed;
    private readonly Speculation.IDraftProposer _drafter;
    private long _preemptions;
    private volatile bool _stopping;
    private long _runFailedAt; // Stopwatch timestamp of the last failed model run; 0 after a run succeeded
    private readonly ManualResetEventSlim _stopSignal = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, Sequence> _live = new();
    private long _restartAt; // Stopwatch timestamp until which a crashed loop waits to restart; 0 while it runs
    private long _restarts;
    private readonly Lock _runGate = new(); // the watchdog interrupts only while a run is in progress
    private long _runStartedAt; // Stopwatch timestamp of the run in progress; 0 between runs
    private bool _runInterrupted; // the watchdog interrupted the run in progress (guarded by _runGate)
    private bool _lastFailureTimedOut; // the last failed run was interrupted for taking too long
    private readonly Timer _watchdog;
    private int _stopped;

    public GenerationEngine(
        IModelRunner runner,
        ITokenizer tokenizer,
        SchedulerOptions options,
        ILogger<GenerationEngine>? logger = null,
        Random? seedSource = null,
        IEnumerable<int>? extraStopTokenIds = null)
    {
        if (options.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(options));
        }

        _runner = runner;
        Tokenizer = tokenizer;
        _options = options with { MaxBatchSize = Math.Min(options.MaxBatchSize, runner.MaxBatchSize) };
        _serviceRate = new ServiceRate(_options.MaxBatchSize);
        _logger = logger ?? NullLogger<GenerationEngine>.Instance;
        _seedSource = seedSource ?? Random.Shared;
        var info = runner.Info;
        // A family's end-of-turn token (tokenizer_config's eos_token) ends generation like the model's EOS ids.
        _stopTokenIds = info.EosTokenIds.Concat(extraStopTokenIds ?? []).ToHashSet();
        _kvCache = new KvCacheManager(options.KvCacheTokens ?? (_options.MaxBatchSize * info.ContextLength));
        if (runner.PrefixBlocks is { BlockCapacity: > 0 } store)
        {
            _prefix = new PrefixCache(store, exception => EngineLog.PrefixCopyFailed(_logger, exception, info.Id), info.WidthSwitchLength);
        }

        _scheduler = NewScheduler();
        _sampler = new TokenSampler(info.VocabularySize);
        _drafter = _options.DraftProposer ?? new Speculation.PromptLookupProposer(_options.SpeculativeNgram);
        _thread = new Thread(Loop) { IsBackground = true, Name = $"engine-{info.Id}" };
        var tick = TimeSpan.FromTicks(Math.Clamp(_options.RunTimeout.Ticks / 4, TimeSpan.TicksPerMillisecond * 10, TimeSpan.TicksPerSecond));
        _watchdog = new Timer(_ => InterruptOverdueRun(), null, tick, tick);
        _thread.Start();
        EngineLog.Started(_logger, info.Id, _options.MaxBatchSize, _kvCache.CapacityTokens, _options.PrefillTokenBudget);
    }

    public ModelInfo Model => _runner.Info;

    public ITokenizer Tokenizer { get; }

    /// <summary>Requests submitted but not yet admitted to the running batch.</summary>
    public int QueuedRequests => Volatile.Read(ref _queued);

    /// <summary>Requests in the running batch after the last step.</summary>
    public int RunningRequests => Volatile.Read(ref _running);

    /// <summary>KV cache tokens reserved after the last step, out of <see cref="KvCacheCapacityTokens"/>.</summary>
    public int KvCacheUsedTokens => Volatile.Read(ref _kvUsedTokens);

    public int KvCacheCapacityTokens => _kvCache.CapacityTokens;

    /// <summary>Prompt tokens looked up in the prefix cache, and how many were found there (zeros without a cache).</summary>
    public (long LookupTokens, long HitTokens) PrefixCacheCounters => _prefix?.Counters ?? (0, 0);

    /// <summary>Tokens the prefix cache can hold; 0 when the runner has no block pool.</summary>
    public long PrefixCacheCapacityTokens => _prefix is null ? 0 : (long)_prefix.CapacityBlocks * _prefix.BlockTokens;

    /// <summary>Tokens proposed by prompt lookup, and how many of them the model's own choice confirmed.</summary>
    public (long Drafted, long Accepted) SpeculationCounters
    {
        get
        {
            var accepted = Interlocked.Read(ref _acceptedTokens); // added after the drafts: read first, never above them
            return (Interlocked.Read(ref _draftedTokens), accepted);
        }
    }

    /// <summary>Steps the runner ran in two because of a LongRoPE model's rotary switch (<see cref="IModelRunner.SplitSteps"/>).</summary>
    public long SplitSteps => _runner.SplitSteps;

    /// <summary>Times a running request was sent back to the queue to let another tenant in.</summary>
    public long Preemptions => Interlocked.Read(ref _preemptions);

    /// <summary>Requests whose reader went away before they finished.</summary>
    public long CancelledRequests => Interlocked.Read(ref _cancelledRequests);

    public GenerationStream Submit(GenerationRequest request)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        if (Interlocked.Read(ref _restartAt) is var restartAt and > 0)
        {
            var seconds = (int)Math.Ceiling(System.Diagnostics.Stopwatch.GetElapsedTime(System.Diagnostics.Stopwatch.GetTimestamp(), restartAt).TotalSeconds);
            throw new EngineFailedException($"The engine of model {Model.Id} failed and is restarting; try again shortly.", Math.Max(seconds, 1));
        }

        if (RunOverdue())
        {
            // A run past its timeout (a device that stopped answering, perhaps beyond any interrupt): nothing queued here
            // would start; the router sends the request to another replica, or the caller is told to come back.
            throw new EngineFailedException($"The engine of model {Model.Id} is waiting for a model run that has taken longer than its run timeout; try again later.", 30);
        }

        Validate(request);
        if (Interlocked.Increment(ref _queued) > _options.MaxQueuedRequests)
        {
            Interlocked.Decrement(ref _queued);
            throw new EngineOverloadedException($"Model {Model.Id} has {_options.MaxQueuedRequests} requests waiting; try again later.",
                _options.MaxQueuedRequests, _serviceRate.RetryAfterSeconds(_options.MaxQueuedRequests));
        }

        RefuseWhenTheWaitIsTooLong(request);
        var channel = Channel.CreateUnbounded<GenerationDelta>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        long seed;
        lock (_seedSource)
        {
            seed = request.Sampling.Seed ?? _seedSource.NextInt64();
        }

        var sequence = new Sequence(
            Interlocked.Increment(ref _nextSequenceId),
            request,
            new SamplingState(request.Sampling, request.PromptTokens, seed),
            new OutputProcessor(Tokenizer, request.Sampling, _stopTokenIds),
            channel.Writer);
        _live[sequence.Id] = sequence;
        if (_stopping)
        {
            // Stopped meanwhile: the final cancellation may have run already and would never answer this one.
            _live.TryRemove(sequence.Id, out _);
            Interlocked.Decrement(ref _queued);
            throw new ObjectDisposedException(nameof(GenerationEngine));
        }

        _incoming.Enqueue(sequence);
        _wakeUp.Release();
        return new GenerationStream(request.RequestId, channel.Reader, () =>
        {
            sequence.RequestCancel();
            WakeUp();
        });
    }

    /// <summary>
    /// False after a model run failed, until one succeeds again or <see cref="SchedulerOptions.FailedRunProbation"/> has
    /// passed (so that a replica the router sends nothing to is tried again), while a crashed loop waits to restart, and
    /// while a run takes longer than <see cref="SchedulerOptions.RunTimeout"/>: a replica router sends work elsewhere meanwhile.
    /// </summary>
    public bool Healthy => RecentlyFailed() is false && Interlocked.Read(ref _restartAt) == 0 && !RunOverdue();

    private bool RecentlyFailed()
    {
        var failedAt = Interlocked.Read(ref _runFailedAt);
        // A run that had to be interrupted is likely to hang again: ranked last for a whole run timeout, not 10 s.
        var probation = Volatile.Read(ref _lastFailureTimedOut) ? Max(_options.FailedRunProbation, _options.RunTimeout) : _options.FailedRunProbation;
        return failedAt != 0 && System.Diagnostics.Stopwatch.GetElapsedTime(failedAt) < probation;
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    /// <summary>Tenants whose fair-queue state the scheduler keeps: those active lately, not every tenant ever seen.</summary>
    public int TrackedTenants => _scheduler.TrackedTenants;

    /// <summary>Times the engine loop crashed and was restarted.</summary>
    public long Restarts => Interlocked.Read(ref _restarts);

    /// <summary>How long a request submitted now would likely wait for its first step; null before the rate is known.</summary>
    public TimeSpan? ExpectedWait => _serviceRate.ExpectedWait(QueuedRequests, FreeSlots);

    /// <summary>Batch places not taken by a running request.</summary>
    private int FreeSlots => _options.MaxBatchSize - RunningRequests;

    public int MaxBatchSize => _options.MaxBatchSize;

    public void Dispose() => Stop();

    /// <summary>
    /// Stops the engine: the run in progress is interrupted, unfinished requests are cancelled. Returns false when the
    /// engine thread is still inside the runner after <see cref="SchedulerOptions.StopTimeout"/> (a native call that
    /// ignores the interrupt): the caller must not dispose the runner then, or the thread would run on freed memory.
    /// </summary>
    public bool Stop()
    {
        if (!_stopping)
        {
            _stopping = true;
            _stopSignal.Set();
            WakeUp();
            InterruptOverdueRun();
        }

        if (!_thread.Join(_options.StopTimeout))
        {
            EngineLog.StopTimedOut(_logger, Model.Id, _options.StopTimeout.TotalSeconds);
            return false; // the watchdog keeps interrupting; what the thread uses stays alive
        }

        if (Interlocked.Exchange(ref _stopped, 1) == 0)
        {
            _watchdog.Dispose();
            _wakeUp.Dispose();
            _stopSignal.Dispose();
        }

        return true;
    }

    /// <summary>Whether the run in progress has taken longer than <see cref="SchedulerOptions.RunTimeout"/>.</summary>
    private bool RunOverdue()
    {
        var startedAt = Interlocked.Read(ref _runStartedAt);
        return startedAt != 0 && System.Diagnostics.Stopwatch.GetElapsedTime(startedAt) > _options.RunTimeout;
    }

    /// <summary>
    /// The watchdog: interrupts a run that is overdue, or any run while the engine stops (again at each tick, in case
    /// the runner missed it between two runs).
    /// </summary>
    private void InterruptOverdueRun()
    {
        lock (_runGate)
        {
            var startedAt = _runStartedAt;
            if (startedAt == 0 || !(_stopping || RunOverdue()))
            {
                return;
            }

            if (!_runInterrupted && !_stopping)
            {
                EngineLog.RunOverdue(_logger, Model.Id, System.Diagnostics.Stopwatch.GetElapsedTime(startedAt).TotalSeconds);
            }

            _runInterrupted = !_stopping || _runInterrupted;
            try
            {
                _runner.Interrupt();
            }
            catch (Exception exception) when (exception is ObjectDisposedException or InvalidOperationException)
            {
                // The runner is gone or cannot be interrupted: stopping gives up on it after its timeout.
            }
        }
    }

    /// <summary>
    /// One model run under the watchdog. A run it interrupted for taking too long throws <see cref="TimeoutException"/>
    /// (the runner's own exception inside).
    /// </summary>
    private ReadOnlyMemory<float> ExecuteWatched(IReadOnlyList<RunnerSequence> batch)
    {
        lock (_runGate)
        {
            _runInterrupted = false;
            Interlocked.Exchange(ref _runStartedAt, System.Diagnostics.Stopwatch.GetTimestamp());
        }

        try
        {
            return _runner.Execute(batch);
        }
        catch (Exception exception) when (Volatile.Read(ref _runInterrupted))
        {
            throw new TimeoutException(
                string.Create(System.Globalization.CultureInfo.InvariantCulture, $"it took longer than the run timeout of {_options.RunTimeout.TotalSeconds:0.###} s and was interrupted (the device may be hung)"),
                exception);
        }
        finally
        {
            lock (_runGate)
            {
                Interlocked.Exchange(ref _runStartedAt, 0);
            }
        }
    }

    private void WakeUp()
    {
        try
        {
            _wakeUp.Release();
        }
        catch (ObjectDisposedException)
        {
            // The engine is gone; nothing is left to wake.
        }
    }

    /// <summary>Never an unbounded wait: refuse now when the queue ahead would outlast the caller's patience.</summary>
    private void RefuseWhenTheWaitIsTooLong(GenerationRequest request)
    {
        var ahead = Volatile.Read(ref _queued) - 1;
        if (request.MaxQueueWait is { } limit && _serviceRate.ExpectedWait(ahead, FreeSlots) is { } wait && wait > limit)
        {
            Interlocked.Decrement(ref _queued);
            throw new EngineOverloadedException(
                string.Create(System.Globalization.CultureInfo.InvariantCulture, $"Model {Model.Id} would keep this request waiting about {wait.TotalSeconds:F0} s ({ahead} ahead of it), longer than its timeout of {limit.TotalSeconds:F0} s; try again later."),
                ahead, _serviceRate.RetryAfterSeconds(ahead));
        }
    }

    private void Validate(GenerationRequest request)
    {
        if (request.Sampling.Validate() is { } problem)
        {
            throw new ArgumentException(problem, nameof(request));
        }

        var prompt = request.PromptTokens;
        if (prompt.Count == 0)
        {
            throw new ArgumentException("The prompt has no tokens.", nameof(request));
        }

        // A scoring request (no tokens asked) may fill the context; one that generates needs room for a token.
        if (prompt.Count > Model.ContextLength || (prompt.Count == Model.ContextLength && request.Sampling.MaxTokens > 0))
        {
            throw new ArgumentException($"The prompt has {prompt.Count} tokens; the model's context holds {Model.ContextLength} including at least one generated token.", nameof(request));
        }

        if (prompt.Any(t => (uint)t >= (uint)Model.VocabularySize))
        {
            throw new ArgumentException($"The prompt holds a token id outside the vocabulary of {Model.VocabularySize}.", nameof(request));
        }

        if (request.PromptLogprobs && !_runner.LogitsEveryPosition)
        {
            throw new ArgumentException($"Model {Model.Id} returns logits for the last position only, so it cannot score a prompt (echo with logprobs).", nameof(request));
        }

        var reserved = Math.Min(Model.ContextLength, prompt.Count + request.Sampling.MaxTokens);
        if (reserved > _kvCache.CapacityTokens)
        {
            throw new ArgumentException($"The request needs {reserved} tokens of KV cache; the engine has {_kvCache.CapacityTokens}.", nameof(request));
        }
    }

    /// <summary>
    /// Supervises the engine loop: a crash outside a model run fails every request the engine holds (they would never
    /// finish), resets the scheduler, and restarts after a backoff that doubles while crashes follow each other.
    /// </summary>
    private void Loop()
    {
        var backoff = _options.RestartBackoff;
        while (!_stopping)
        {
            var startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                RunSteps();
            }
            catch (Exception exception) when (_stopping)
            {
                EngineLog.LoopCrashed(_logger, exception, Model.Id, 0, 0); // while stopping: what it held is cancelled below
                break;
            }
            catch (Exception exception)
            {
                if (System.Diagnostics.Stopwatch.GetElapsedTime(startedAt) > _options.MaxRestartBackoff * 2)
                {
                    backoff = _options.RestartBackoff; // it ran well for a while: this is a new failure, not a loop
                }

                Interlocked.Exchange(ref _restartAt, System.Diagnostics.Stopwatch.GetTimestamp() + (long)(backoff.TotalSeconds * System.Diagnostics.Stopwatch.Frequency));
                Interlocked.Increment(ref _restarts); // counted before the held requests learn of the failure, so that they see it
                var failed = FailEverything(exception, (int)Math.Ceiling(backoff.TotalSeconds));
                EngineLog.LoopCrashed(_logger, exception, Model.Id, failed, backoff.TotalMilliseconds);
                _stopSignal.Wait(backoff);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxRestartBackoff.Ticks));
                Interlocked.Exchange(ref _restartAt, 0);
                if (!_stopping)
                {
                    EngineLog.LoopRestarted(_logger, Model.Id, Restarts);
                }
            }
        }

        try
        {
            CancelEverything();
        }
        catch (Exception exception)
        {
            EngineLog.LoopCrashed(_logger, exception, Model.Id, 0, 0); // an exception on this thread would end the process
        }
    }

    private void RunSteps()
    {
        while (!_stopping)
        {
            while (_incoming.TryDequeue(out var sequence))
            {
                if (!_live.ContainsKey(sequence.Id))
                {
                    continue; // submitted while a crash was being handled and answered (and uncounted) by it
                }

                _scheduler.Add(sequence);
            }

            var worked = Step();
            Volatile.Write(ref _running, _scheduler.RunningCount);
            Volatile.Write(ref _kvUsedTokens, _kvCache.UsedTokens);
            if (!worked)
            {
                _wakeUp.Wait();
            }
        }
    }

    /// <summary>Ends every held request with the crash and starts the bookkeeping afresh. Returns how many there were.</summary>
    private int FailEverything(Exception crash, int retryAfterSeconds)
    {
        while (_incoming.TryDequeue(out var sequence))
        {
            _scheduler.Add(sequence);
        }

        // Every request not yet answered, including one the crash caught between the scheduler and its answer.
        var held = _live.Values.ToList();
        foreach (var sequence in held)
        {
            Complete(sequence, new EngineFailedException($"The engine of model {Model.Id} failed: {crash.Message}", retryAfterSeconds, crash));
            try
            {
                _runner.Release(sequence.Id);
            }
            catch (Exception)
            {
                // The runner's own bookkeeping may be what failed; the fresh start below does not depend on it.
            }
        }

        _kvCache = new KvCacheManager(_kvCache.CapacityTokens);
        _prefix?.Clear();
        _scheduler = NewScheduler();
        // Each waiting request was counted once when submitted (or preempted); uncount exactly those, so that a
        // concurrent submission's count survives.
        Interlocked.Add(ref _queued, -held.Count(sequence => sequence.Status == SequenceStatus.Waiting));
        Volatile.Write(ref _running, 0);
        Volatile.Write(ref _kvUsedTokens, 0);
        return held.Count;
    }

    /// <summary>One engine step: schedule, execute, update. Returns false when there was nothing to run.</summary>
    private bool Step()
    {
        foreach (var (sequence, wasWaiting) in _scheduler.RemoveCancelled())
        {
            if (wasWaiting)
            {
                Interlocked.Decrement(ref _queued);
            }

            Interlocked.Increment(ref _cancelledRequests);
            _runner.Release(sequence.Id);
            Complete(sequence, null);
        }

        var plan = _scheduler.Schedule();
        foreach (var preempted in plan.Preempted)
        {
            // Back in the queue (the scheduler released its KV rows, after saving them to the prefix cache).
            Interlocked.Increment(ref _queued);
            Interlocked.Increment(ref _preemptions);
        }

        if (plan.IsEmpty)
        {
            return false;
        }

        foreach (var admitted in plan.Prefill.Where(p => p.Admitted))
        {
            admitted.Sequence.AdmittedAt ??= System.Diagnostics.Stopwatch.GetTimestamp();
            Interlocked.Decrement(ref _queued);
        }

        // Counted as running from admission on, so that a replica router never sees a busy engine as idle mid-step.
        Volatile.Write(ref _running, _scheduler.RunningCount);

        Run(plan.Prefill);
        Run(plan.Scoring);
        if (plan.Decode is [var alone] && Drafts(alone.Sequence) is { Length: > 0 } drafts && RunSpeculative(alone.Sequence, drafts))
        {
            return true;
        }

        Run(plan.Decode);

        return true;
    }

    /// <summary>
    /// Prompt-lookup drafts for a sequence decoding alone, as many as its remaining tokens, the context and the runner's
    /// logits rows allow; none while it pauses after misses. Alone, because ONNX Runtime's GroupQueryAttention (every
    /// model-builder export) refuses a run of several new tokens after a past for more than one row ("batch_size must
    /// be 1 when sequence_length > 1 and past context is given"), and verifying each row in a run of its own would
    /// cost a whole weights pass per row; a busy batch keeps the device busy without them.
    /// </summary>
    private int[]? Drafts(Sequence sequence)
    {
        if (_options.SpeculativeTokens == 0 || _speculationFailed || !_runner.SupportsRollback || sequence.Status != SequenceStatus.Running)
        {
            return null;
        }

        if (sequence.SpeculationPause > 0)
        {
            sequence.SpeculationPause--;
            return null;
        }

        var room = Math.Min(
            Math.Min(_options.SpeculativeTokens, Math.Min(_options.MaxBatchSize, _runner.MaxLogitsPositions) - 1),
            Math.Min(sequence.Request.Sampling.MaxTokens - sequence.Output.CompletionTokens - 1, Model.ContextLength - sequence.Tokens.Count));
        if (room <= 0)
        {
            return null;
        }

        Span<int> drafts = stackalloc int[room];
        var count = _drafter.Propose(sequence.Tokens, drafts);
        if (count == 0)
        {
            sequence.SpeculationPause = 2; // nothing to propose: look again in a few steps, not at every one
            return null;
        }

        return drafts[..count].ToArray();
    }

    /// <summary>
    /// Runs the sequence's last token and its drafts in one model run, then samples position by position exactly as
    /// plain decoding would (the same sampler, random stream and constraint): a draft is kept while it equals the token
    /// sampled before it, so outputs do not change, only how many tokens a run yields. The rejected drafts' KV is dropped.
    /// </summary>
    /// <returns>False when the verifying run failed before anything was recorded: the step decodes plainly instead.</returns>
    private bool RunSpeculative(Sequence sequence, int[] drafts)
    {
        var computed = sequence.Computed;
        int[] input = [sequence.Tokens[^1], .. drafts];
        ReadOnlyMemory<float> logits;
        try
        {
            logits = ExecuteWatched([new RunnerSequence(sequence.Id, input, computed) { LogitsPositions = input.Length, PromptLength = sequence.PromptLength }]);
        }
        catch (Exception) when (_stopping)
        {
            return true; // interrupted because the engine stops: nothing to decode any more
        }
        catch (TimeoutException exception)
        {
            // Not a model that cannot verify drafts: a run that hung. Decoding it again plainly would wait as long.
            Volatile.Write(ref _lastFailureTimedOut, true);
            Interlocked.Exchange(ref _runFailedAt, System.Diagnostics.Stopwatch.GetTimestamp());
            EngineLog.RunFailed(_logger, exception, 1, Model.Id);
            Finish(sequence, new ModelRunException($"The model run failed: {exception.Message}", sequence.Output.CompletionTokens > 0, exception));
            return true;
        }
        catch (Exception exception)
        {
            // The runner records a run's KV only when it succeeds: the sequence is as it was. Decode it plainly, and
            // stop drafting for this engine (the model or runner cannot verify drafts; a plain run says if it is worse).
            _speculationFailed = true;
            EngineLog.SpeculationFailed(_logger, exception, Model.Id);
            return false;
        }

        Interlocked.Exchange(ref _runFailedAt, 0);
        var vocabulary = Model.VocabularySize;
        var accepted = 0;
        for (var i = 0; i < input.Length; i++)
        {
            sequence.Computed = computed + i + 1; // the KV holds the last token and the drafts kept so far
            var token = Update(sequence, logits.Span.Slice(i * vocabulary, vocabulary));
            if (sequence.Status == SequenceStatus.Finished)
            {
                break;
            }

            if (i == drafts.Length || token != drafts[i])
            {
                break;
            }

            accepted++;
        }

        Interlocked.Add(ref _draftedTokens, drafts.Length);
        Interlocked.Add(ref _acceptedTokens, accepted);
        _scheduler.Charge(sequence, accepted); // fair queueing counts every token the step yielded
        if (sequence.Status == SequenceStatus.Finished)
        {
            return true;
        }

        try
        {
            _runner.Rollback(sequence.Id, sequence.Computed);
        }
        catch (Exception exception)
        {
            // Its cache no longer matches its tokens: this request cannot go on, the others can.
            _speculationFailed = true;
            EngineLog.SpeculationFailed(_logger, exception, Model.Id);
            Finish(sequence, new ModelRunException($"Dropping rejected draft tokens failed: {exception.Message}", true, exception));
            return true;
        }

        sequence.SpeculationBackoff = accepted > 0 ? 0 : Math.Clamp(sequence.SpeculationBackoff * 2, 1, 32);
        sequence.SpeculationPause = accepted > 0 ? 0 : sequence.SpeculationBackoff;
        return true;
    }

    private void Run(IReadOnlyList<ScheduledSequence> rows)
    {
        if (rows.Count == 0)
        {
            return;
        }

        var batch = new RunnerSequence[rows.Count];
        for (var i = 0; i < rows.Count; i++)
        {
            var (sequence, count) = rows[i];
            var tokens = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(sequence.Tokens).Slice(sequence.Computed, count).ToArray();
            // A prompt being scored needs every position's logits; the scheduler cut its chunk to what a run returns.
            var positions = sequence.PromptLogprobs is null ? 1 : count;
            batch[i] = new RunnerSequence(sequence.Id, tokens, sequence.Computed) { PromptLength = sequence.PromptLength, LogitsPositions = positions };
        }

        ReadOnlyMemory<float> logits;
        try
        {
            logits = ExecuteWatched(batch);
        }
        catch (Exception) when (_stopping)
        {
            return; // interrupted because the engine stops: its requests are cancelled, not failed
        }
        catch (Exception exception)
        {
            Volatile.Write(ref _lastFailureTimedOut, exception is TimeoutException);
            Interlocked.Exchange(ref _runFailedAt, System.Diagnostics.Stopwatch.GetTimestamp());
            EngineLog.RunFailed(_logger, exception, rows.Count, Model.Id);
            foreach (var (sequence, _) in rows)
            {
                Finish(sequence, new ModelRunException($"The model run failed: {exception.Message}", sequence.Output.CompletionTokens > 0, exception));
            }

            return;
        }

        Interlocked.Exchange(ref _runFailedAt, 0);

        var vocabulary = Model.VocabularySize;
        var firstRow = 0;
        for (var i = 0; i < rows.Count; i++)
        {
            var (sequence, count) = rows[i];
            var positions = batch[i].LogitsPositions;
            var rowLogits = logits.Slice(firstRow * vocabulary, positions * vocabulary);
            firstRow += positions;
            if (sequence.PromptLogprobs is { } scores && !Score(sequence, scores, rowLogits, count))
            {
                continue;
            }

            sequence.Computed += count;
            if (sequence.Computed < sequence.Tokens.Count)
            {
                continue; // more prompt chunks to go
            }

            if (sequence.Status == SequenceStatus.Prefilling)
            {
                _prefix?.Save(sequence); // the prompt is in: requests sharing its start can reuse it from now on
            }

            sequence.Status = SequenceStatus.Running;
            if (sequence.Request.Sampling.MaxTokens == 0)
            {
                EndAfterPrompt(sequence);
                continue;
            }

            Update(sequence, rowLogits.Span[((positions - 1) * vocabulary)..]);
        }
    }

    /// <summary>
    /// Adds the scores of the prompt tokens this chunk's logits predict: position p's row gives the log probability of
    /// token p + 1. Returns false when reading them failed (the request ends; the others go on).
    /// </summary>
    private bool Score(Sequence sequence, List<TokenLogprob> scores, ReadOnlyMemory<float> logits, int count)
    {
        var vocabulary = Model.VocabularySize;
        var (computed, promptLength, top) = (sequence.Computed, sequence.PromptLength, sequence.Request.Sampling.TopLogprobs);
        var tokens = sequence.Tokens;
        var scored = Math.Clamp(promptLength - computed - 1, 0, count); // the last prompt position predicts the answer
        try
        {
            // Each position reads its whole row (a large vocabulary: a millisecond or so), and the step waits for all
            // of them: in parallel, so that the other sequences' next tokens wait as little as the cores allow.
            var results = new TokenLogprob[scored];
            Parallel.For(0, scored, j => results[j] = LogprobCalculator.Compute(logits.Span.Slice(j * vocabulary, vocabulary), tokens[computed + j + 1], top));
            scores.AddRange(results);
            return true;
        }
        catch (Exception exception) when (exception is not (OutOfMemoryException or InsufficientExecutionStackException))
        {
            EngineLog.RequestFailed(_logger, exception, sequence.Id, Model.Id);
            Finish(sequence, new RequestFailedException($"The request failed while its prompt was scored: {exception.Message}", exception));
            return false;
        }
    }

    /// <summary>A request for no tokens (max_tokens 0, a prompt only scored) ends once its prompt is in.</summary>
    private void EndAfterPrompt(Sequence sequence)
    {
        sequence.Writer.TryWrite(new GenerationDelta(string.Empty, [], null, FinishReason.Length, UsageOf(sequence)) { PromptLogprobs = TakePromptLogprobs(sequence) });
        Finish(sequence, null);
    }

    /// <summary>The prompt's scores, once, for the first delta; none after (a preempted sequence recomputes without them).</summary>
    private static List<TokenLogprob>? TakePromptLogprobs(Sequence sequence)
    {
        var scores = sequence.PromptLogprobs;
        sequence.PromptLogprobs = null;
        return scores;
    }

    /// <summary>
    /// Samples the sequence's next token and writes its delta. A failure in what belongs to this request alone (its
    /// constraint, its stop strings, decoding its text) ends this request only: as a crash of the loop it would fail
    /// every request of the batch, and each replica a retry reached. Returns -1 then.
    /// </summary>
    private int Update(Sequence sequence, ReadOnlySpan<float> logits)
    {
        int token;
        TokenLogprob? logprob;
        string text;
        FinishReason? finish;
        try
        {
            (token, logprob) = _sampler.Sample(logits, sequence.Sampling, _stopTokenIds);
            sequence.Tokens.Add(token);
            (text, finish) = sequence.Output.Accept(token, sequence.Tokens.Count >= Model.ContextLength);
        }
        catch (Exception exception) when (exception is not (OutOfMemoryException or InsufficientExecutionStackException))
        {
            EngineLog.RequestFailed(_logger, exception, sequence.Id, Model.Id);
            Finish(sequence, new RequestFailedException($"The request failed while its output was read: {exception.Message}", exception));
            return -1;
        }

        var usage = finish is null ? (GenerationUsage?)null : UsageOf(sequence);
        sequence.Writer.TryWrite(new GenerationDelta(text, [token], logprob is null ? null : [logprob], finish, usage)
        {
            StopString = finish == FinishReason.Stop ? sequence.Output.MatchedStopString : null,
            PromptLogprobs = TakePromptLogprobs(sequence),
        });
        if (finish is not null)
        {
            Finish(sequence, null);
        }

        return token;
    }

    private void Finish(Sequence sequence, Exception? error)
    {
        if (sequence.AdmittedAt is { } admitted)
        {
            _serviceRate.Finished(System.Diagnostics.Stopwatch.GetElapsedTime(admitted));
        }

        if (error is null)
        {
            _prefix?.Save(sequence); // with its answer: the next turn of a conversation starts with it
        }

        _scheduler.Finish(sequence);
        _runner.Release(sequence.Id);
        Complete(sequence, error);
    }

    private static GenerationUsage UsageOf(Sequence sequence) =>
        new(sequence.PromptLength, sequence.Output.CompletionTokens, sequence.QueueMilliseconds) { CachedPromptTokens = sequence.CachedPromptTokens };

    private Scheduler NewScheduler() =>
        new(_options, _kvCache, Model.ContextLength, _prefix, id => _runner.Release(id), _runner.MaxLogitsPositions); // a scored chunk runs alone

    /// <summary>Ends a request's stream; the engine no longer holds it.</summary>
    private void Complete(Sequence sequence, Exception? error)
    {
        _live.TryRemove(sequence.Id, out _);
        sequence.Writer.TryComplete(error);
    }

    private void CancelEverything()
    {
        while (_incoming.TryDequeue(out var sequence))
        {
            _scheduler.Add(sequence);
        }

        var unfinished = _live.Values.ToList();
        foreach (var sequence in unfinished)
        {
            sequence.Writer.TryWrite(new GenerationDelta(string.Empty, [], null, FinishReason.Cancelled, UsageOf(sequence)));
            Complete(sequence, null);
            try
            {
                _runner.Release(sequence.Id);
            }
            catch (Exception exception) when (exception is InvalidOperationException or ObjectDisposedException)
            {
                // Stopping anyway: a runner that cannot release a row is disposed right after.
            }
        }

        EngineLog.Stopped(_logger, Model.Id, unfinished.Count);
    }
}
