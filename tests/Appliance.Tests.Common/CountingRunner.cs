using Appliance.Engine;

namespace Appliance.Tests.Common;

/// <summary>
/// A fake model for engine unit tests: the next token is always (last token + 1) modulo the vocabulary. It records
/// every batch it was given and can be paused or made to fail; it returns logits for several positions and drops
/// positions (rollback) as a shared-buffer runner does.
/// </summary>
public sealed class CountingRunner(int vocabularySize = 300, int contextLength = 64, int maxBatchSize = 8, int eosTokenId = 299) : IModelRunner
{
    private readonly Dictionary<long, int> _lengths = [];
    private readonly float[] _logits = new float[maxBatchSize * vocabularySize];
    private readonly object _gate = new();

    public ModelInfo Info { get; } = new("counting", vocabularySize, contextLength, new HashSet<int> { eosTokenId }, 0);

    public int MaxBatchSize => maxBatchSize;

    public bool SupportsRollback { get; set; } = true;

    public bool LogitsEveryPosition { get; set; } = true;

    public void Rollback(long sequenceId, int length)
    {
        lock (_gate)
        {
            if (length > _lengths[sequenceId])
            {
                throw new InvalidOperationException($"sequence {sequenceId}: cannot keep {length} of {_lengths[sequenceId]} tokens");
            }

            _lengths[sequenceId] = length;
        }
    }

    /// <summary>Every batch run so far, as (sequence id, new token count, past length) rows.</summary>
    public List<RunnerSequence[]> Batches { get; } = [];

    /// <summary>While set, Execute waits (lets a test fill the queue).</summary>
    public ManualResetEventSlim Running { get; } = new(true);

    /// <summary>When set, runs after this many block until <see cref="Running"/> is set again.</summary>
    public int? PauseAfterRuns { get; set; }

    /// <summary>When set, the next Execute throws it.</summary>
    public Exception? FailNext { get; set; }

    public IReadOnlyCollection<long> LiveSequences
    {
        get
        {
            lock (_gate)
            {
                return [.. _lengths.Keys];
            }
        }
    }

    public ReadOnlyMemory<float> Execute(IReadOnlyList<RunnerSequence> batch)
    {
        Running.Wait();
        lock (_gate)
        {
            Batches.Add([.. batch]);
            if (Batches.Count == PauseAfterRuns)
            {
                Running.Reset();
            }

            if (FailNext is { } failure)
            {
                FailNext = null;
                throw failure;
            }

            Array.Clear(_logits);
            var row = 0;
            foreach (var sequence in batch)
            {
                if (_lengths.GetValueOrDefault(sequence.SequenceId) != sequence.PastLength)
                {
                    throw new InvalidOperationException($"sequence {sequence.SequenceId}: past {sequence.PastLength} but {_lengths.GetValueOrDefault(sequence.SequenceId)} cached");
                }

                _lengths[sequence.SequenceId] = sequence.PastLength + sequence.NewTokens.Length;
                var tokens = sequence.NewTokens.Span;
                for (var position = tokens.Length - sequence.LogitsPositions; position < tokens.Length; position++, row++)
                {
                    _logits[(row * Info.VocabularySize) + ((tokens[position] + 1) % Info.VocabularySize)] = 10f;
                }
            }

            return _logits.AsMemory(0, row * Info.VocabularySize);
        }
    }

    public void Release(long sequenceId)
    {
        lock (_gate)
        {
            _lengths.Remove(sequenceId);
        }
    }

    public void Dispose() => Running.Dispose();
}
