using System.Runtime.CompilerServices;
using System.Threading.Channels;
using Appliance.Audit.Chain;
using Appliance.Audit.Stores;
using Microsoft.Extensions.Logging;

namespace Appliance.Audit;

/// <summary>The audit record could not be stored; the request it belongs to must not be answered.</summary>
public sealed class AuditUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>How the audit log writes.</summary>
public sealed record AuditLogOptions
{
    /// <summary>The most records one transaction (one fsync) carries.</summary>
    public int MaxBatch { get; init; } = 512;

    /// <summary>A checkpoint is signed after this many entries...</summary>
    public int CheckpointEvery { get; init; } = 1000;

    /// <summary>...or when this much time has passed since the last one and there are new entries.</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary>
/// The one writer of a node's chain. Callers hand in records and wait until theirs is durable; a single loop takes
/// whatever has queued up meanwhile, chains it (sequence, previous hash, hash) and stores it in one transaction (group
/// commit), signing a checkpoint when one is due. A failed transaction fails every caller in it and leaves the chain
/// head where it was. With other nodes' chains in the store, a checkpoint is preceded by a witness entry naming their
/// latest checkpoints whenever those moved (<see cref="ChainWitness"/>).
/// </summary>
public sealed partial class AuditLog : IAsyncDisposable
{
    private readonly IAuditStore _store;
    private readonly CheckpointSigner _signer;
    private readonly TimeProvider _time;
    private readonly AuditLogOptions _options;
    private readonly ILogger _logger;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;
    private long _sequence;
    private string _head;
    private long _lastSignedSequence;
    private DateTimeOffset _lastCheckpoint;
    private string? _lastWitness; // the detail of this chain's last witness entry (ChainWitness)
    private Dictionary<string, WitnessedCheckpoint> _witnessed = new(StringComparer.Ordinal); // what it named, per chain
    private Dictionary<string, WitnessedCheckpoint>? _pendingWitnessed;
    private long _lastWitnessSequence;
    private Unconfirmed? _unconfirmed; // an append the store reported failed that it may hold all the same
    private DateTimeOffset _idleRetryAfter = DateTimeOffset.MinValue;

    /// <summary>The longest an idle checkpoint waits to be tried again after the store failed it.</summary>
    private static readonly TimeSpan MaxIdleRetry = TimeSpan.FromSeconds(10);

    public AuditLog(IAuditStore store, CheckpointSigner signer, string node, TimeProvider time, AuditLogOptions options, ILogger<AuditLog> logger)
    {
        _store = store;
        _signer = signer;
        Node = node;
        _time = time;
        _options = options;
        _logger = logger;
        // A chain that retention emptied (a node idle for the whole retention period) goes on from the signed point
        // the retention record names, as its own entry for the removal would have it: from entry 1 again, it would
        // read as entries inserted before that point, and would verify as broken for good.
        // The head first: a retention run that commits between the two reads then leaves a head to go on from.
        var stored = store.Head(node);
        var retained = store.Retention(node);
        (_sequence, _head) = stored ?? (retained is null ? (0, CanonicalJson.GenesisHash) : (retained.ThroughSequence, retained.ThroughHash));
        _lastSignedSequence = store.LatestCheckpoints().FirstOrDefault(c => c.Node == node)?.Sequence ?? retained?.ThroughSequence ?? 0;
        _lastCheckpoint = time.GetUtcNow();
        if (store.LatestWitness(node, _lastSignedSequence) is { } witness && ChainWitness.Read(witness.Record) is { } seen)
        {
            // Carried forward across restarts (a signed one only): a chain once witnessed stays named, at the furthest
            // checkpoint seen.
            _witnessed = seen.ToDictionary(c => c.Node, StringComparer.Ordinal);
            (_lastWitness, _lastWitnessSequence) = (witness.Record.Detail, witness.Sequence);
        }

        _writer = Task.Factory.StartNew(WriteLoop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    public string Node { get; }

    /// <summary>The sequence of the last entry written to this node's chain (0: none).</summary>
    public long LastSequence => Interlocked.Read(ref _sequence);

    /// <summary>
    /// When the last write of records failed and why, while no write has succeeded since (null: the log records). A
    /// node reports this as not ready, so that the load balancer stops sending it requests it would have to refuse.
    /// </summary>
    public (DateTimeOffset At, string Reason)? Failing => Volatile.Read(ref _failingBox)?.Value;

    private StrongBox<(DateTimeOffset At, string Reason)>? _failingBox;

    /// <summary>The writer ended while the log is open (it should not): every record is refused until a restart.</summary>
    public bool WriterStopped => _writer.IsCompleted && !_queue.Reader.Completion.IsCompleted && !_closing;

    private volatile bool _closing;

    public IAuditStore Store => _store;

    /// <summary>Stores a record; completes when it is durable, or throws <see cref="AuditUnavailableException"/>.</summary>
    public Task<AuditEntry> RecordAsync(AuditRecord record)
    {
        if (_writer.IsCompleted)
        {
            // The writer ended (it should not): refuse at once rather than queue a record nobody will write.
            return Task.FromException<AuditEntry>(new AuditUnavailableException("the audit writer has stopped"));
        }

        var pending = new Pending(CanonicalJson.Normalize(record), new TaskCompletionSource<AuditEntry>(TaskCreationOptions.RunContinuationsAsynchronously));
        return _queue.Writer.TryWrite(pending)
            ? pending.Done.Task
            : Task.FromException<AuditEntry>(new AuditUnavailableException("the audit log is shut down"));
    }

    public async ValueTask DisposeAsync()
    {
        _closing = true;
        _queue.Writer.TryComplete();
        await _writer;
    }

    private async Task WriteLoop()
    {
        var batch = new List<Pending>(_options.MaxBatch);
        while (true)
        {
            var wait = _queue.Reader.WaitToReadAsync().AsTask();
            while (true)
            {
                var due = Max(_lastCheckpoint + _options.CheckpointInterval, _idleRetryAfter) - _time.GetUtcNow();
                using var idle = new CancellationTokenSource();
                var timer = Task.Delay(due > TimeSpan.Zero ? due : TimeSpan.Zero, _time, idle.Token);
                if (await Task.WhenAny(wait, timer) == wait)
                {
                    await idle.CancelAsync();
                    break;
                }

                var before = _lastCheckpoint;
                TryCommit([], forceCheckpoint: true); // idle: sign what is unsigned
                if (_lastCheckpoint != before)
                {
                    break; // signed (or nothing to sign): wait for the next records
                }

                // The store failed it: again after a pause (never in a tight loop against a database that is down).
                _idleRetryAfter = _time.GetUtcNow() + (_options.CheckpointInterval < MaxIdleRetry ? _options.CheckpointInterval : MaxIdleRetry);
            }

            if (!await wait)
            {
                TryCommit([], forceCheckpoint: true); // shutting down: a final checkpoint covers the last entries
                return;
            }

            while (batch.Count < _options.MaxBatch && _queue.Reader.TryRead(out var pending))
            {
                batch.Add(pending);
            }

            try
            {
                Commit(batch, forceCheckpoint: false);
            }
            catch (Exception exception)
            {
                // Whatever failed, every caller gets an answer and the writer goes on with the next batch.
                LogStoreFailed(_logger, exception, _store.Name, batch.Count);
                Fail(batch, $"the audit record could not be written: {exception.Message}", exception);
            }

            batch.Clear();
        }
    }

    /// <summary>A commit of no records (a checkpoint): whatever fails is logged, and the writer goes on.</summary>
    private void TryCommit(List<Pending> batch, bool forceCheckpoint)
    {
        try
        {
            Commit(batch, forceCheckpoint);
        }
        catch (Exception exception)
        {
            LogStoreFailed(_logger, exception, _store.Name, 0);
        }
    }

    private void Commit(List<Pending> batch, bool forceCheckpoint)
    {
        if (Settle() == Settled.Unknown)
        {
            // Until the store says whether the earlier append is in it, nothing is built on either head.
            Fail(batch, $"the audit store ({_store.Name}) cannot yet say whether an earlier record was written", null);
            return;
        }

        var entries = new List<AuditEntry>(batch.Count);
        var sequence = _sequence;
        var head = _head;
        foreach (var pending in batch)
        {
            sequence++;
            var hash = CanonicalJson.Hash(sequence, Node, pending.Record, head);
            entries.Add(new AuditEntry(sequence, Node, pending.Record, head, hash));
            head = hash;
        }

        var now = _time.GetUtcNow();
        var unsigned = sequence - _lastSignedSequence;
        var checkpointDue = unsigned > 0 && (forceCheckpoint || unsigned >= _options.CheckpointEvery || now - _lastCheckpoint >= _options.CheckpointInterval);
        var witness = checkpointDue ? WitnessOfOthers() : null;
        if (witness is not null)
        {
            sequence++;
            var record = CanonicalJson.Normalize(new AuditRecord { Time = now, Kind = AuditKinds.Witness, Detail = witness });
            var hash = CanonicalJson.Hash(sequence, Node, record, head);
            entries.Add(new AuditEntry(sequence, Node, record, head, hash));
            head = hash;
        }

        Checkpoint? checkpoint;
        try
        {
            checkpoint = checkpointDue ? _signer.Sign(Node, sequence, head, now) : null;
        }
        catch (Exception exception)
        {
            // Entries are only accepted with the checkpoint that is due: an unsigned stretch would grow unnoticed.
            LogSigningFailed(_logger, exception, batch.Count);
            Fail(batch, $"the audit checkpoint could not be signed: {exception.Message}", exception);
            return;
        }

        if (entries.Count == 0 && checkpoint is null)
        {
            _lastCheckpoint = forceCheckpoint ? now : _lastCheckpoint;
            return;
        }

        var witnessed = _pendingWitnessed;
        void Adopt()
        {
            (_sequence, _head) = (sequence, head);
            if (checkpoint is not null)
            {
                (_lastSignedSequence, _lastCheckpoint) = (sequence, now);
            }

            if (witness is not null)
            {
                (_lastWitness, _witnessed, _lastWitnessSequence) = (witness, witnessed!, entries[^1].Sequence);
            }
        }

        try
        {
            _store.Append(entries, checkpoint);
            Adopt();
        }
        catch (Exception exception)
        {
            // A connection lost during the commit leaves it unknown whether the entries were written. If they were, the
            // chain goes on from them (Settle adopts them; otherwise every later append would collide with them).
            _unconfirmed = new Unconfirmed(sequence, head, checkpoint is not null, Adopt);
            if (Settle() != Settled.Written)
            {
                LogStoreFailed(_logger, exception, _store.Name, entries.Count);
                Fail(batch, $"the audit store ({_store.Name}) refused the record: {exception.Message}", exception);
                return;
            }
        }

        if (batch.Count > 0)
        {
            Volatile.Write(ref _failingBox, null); // records are written again
        }

        for (var i = 0; i < batch.Count; i++)
        {
            batch[i].Done.TrySetResult(entries[i]);
        }
    }

    /// <summary>
    /// The detail of a witness entry when the other chains' latest checkpoints moved since the last one, else null.
    /// What was witnessed before is carried forward: a chain is never dropped from the list and never named at an
    /// earlier checkpoint than before, so deleting or cutting it afterwards does not erase the evidence. Only
    /// checkpoints the audit key signed are named.
    /// </summary>
    private string? WitnessOfOthers()
    {
        try
        {
            var next = new Dictionary<string, WitnessedCheckpoint>(_witnessed, StringComparer.Ordinal);
            foreach (var checkpoint in _store.LatestCheckpoints())
            {
                if (checkpoint.Node != Node && _signer.Signed(checkpoint) && (!next.TryGetValue(checkpoint.Node, out var known) || checkpoint.Sequence > known.Sequence))
                {
                    next[checkpoint.Node] = new WitnessedCheckpoint(checkpoint.Node, checkpoint.Sequence, checkpoint.Hash);
                }
            }

            var detail = next.Count == 0 ? null : ChainWitness.Detail(next.Values.OrderBy(c => c.Node, StringComparer.Ordinal));
            _pendingWitnessed = next;
            // Written again, unchanged, once retention removed the last one: the named chains must stay named.
            var erased = detail is not null && _store.Retention(Node)?.ThroughSequence >= _lastWitnessSequence;
            return detail == _lastWitness && !erased ? null : detail;
        }
        catch (Exception exception)
        {
            // A witness is extra assurance: the entries and their checkpoint are written without it.
            LogWitnessFailed(_logger, exception, _store.Name);
            return null;
        }
    }

    /// <summary>
    /// After an append the store reported failed: asks the store for the chain's head (and, when the append carried a
    /// checkpoint, its latest checkpoint). If they are what that append would have made, it was written after all and
    /// is adopted; if not, it was not; if the store cannot answer, the question stays open and blocks later appends.
    /// </summary>
    private Settled Settle()
    {
        if (_unconfirmed is not { } pending)
        {
            return Settled.Nothing;
        }

        bool written;
        (long Sequence, string Hash)? stored;
        try
        {
            stored = _store.Head(Node);
            written = stored == (pending.Sequence, pending.Hash)
                && (!pending.Checkpoint || _store.LatestCheckpoints().Any(c => c.Node == Node && c.Sequence == pending.Sequence && c.Hash == pending.Hash));
        }
        catch (Exception)
        {
            return Settled.Unknown;
        }

        _unconfirmed = null;
        if (!written)
        {
            if (stored is { } head && head.Sequence > _sequence)
            {
                // The chain holds entries beyond the head adopted here, and this node is its only writer: an append
                // once found not written landed after all (a commit that outlasted its answer). The chain goes on
                // after it; built on the older head, every later append would collide with it until a restart.
                (_sequence, _head) = head;
                LogLateAppendAdopted(_logger, _store.Name, head.Sequence);
                try
                {
                    _lastSignedSequence = Math.Max(_lastSignedSequence, _store.LatestCheckpoints().Where(c => c.Node == Node).Select(c => c.Sequence).DefaultIfEmpty(0).Max());
                }
                catch (Exception)
                {
                    // Only when the next checkpoint is due depends on it.
                }
            }

            return Settled.NotWritten;
        }

        pending.Adopt();
        LogAppendConfirmed(_logger, _store.Name, pending.Sequence);
        return Settled.Written;
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private sealed record Unconfirmed(long Sequence, string Hash, bool Checkpoint, Action Adopt);

    private enum Settled
    {
        Nothing,
        Written,
        NotWritten,
        Unknown,
    }

    private void Fail(List<Pending> batch, string message, Exception? exception)
    {
        if (batch.Count > 0)
        {
            Volatile.Write(ref _failingBox, new StrongBox<(DateTimeOffset At, string Reason)>((_time.GetUtcNow(), message)));
        }

        foreach (var pending in batch)
        {
            pending.Done.TrySetException(new AuditUnavailableException(message, exception));
        }
    }

    [LoggerMessage(EventId = 4007, Level = LogLevel.Warning, Message = "The audit store ({Store}) holds this node's chain through entry {Sequence}, beyond what was known written: an append reported failed was committed late; the chain goes on after it (records in it were refused to their callers)")]
    private static partial void LogLateAppendAdopted(ILogger logger, string store, long sequence);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Critical, Message = "The audit checkpoint could not be signed; {Count} records are refused until signing works again")]
    private static partial void LogSigningFailed(ILogger logger, Exception exception, int count);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "The other nodes' checkpoints could not be read from the audit store ({Store}); this checkpoint goes without a witness entry")]
    private static partial void LogWitnessFailed(ILogger logger, Exception exception, string store);

    [LoggerMessage(EventId = 4005, Level = LogLevel.Warning, Message = "The audit store ({Store}) reported an append as failed, but holds it (through entry {Sequence}): the chain goes on from it")]
    private static partial void LogAppendConfirmed(ILogger logger, string store, long sequence);

    [LoggerMessage(EventId = 4000, Level = LogLevel.Error, Message = "The audit store ({Store}) failed to append {Count} records; their requests are refused")]
    private static partial void LogStoreFailed(ILogger logger, Exception exception, string store, int count);

    private sealed record Pending(AuditRecord Record, TaskCompletionSource<AuditEntry> Done);
}
