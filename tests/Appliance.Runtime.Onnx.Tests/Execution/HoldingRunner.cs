using Appliance.Engine;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>
/// Delegates to a real runner but stops the engine's thread before the first run whose batch <paramref name="holdWhen"/>
/// accepts, until <see cref="Resume"/>, so that a test sees the engine in a chosen state however slowly the machine runs.
/// </summary>
internal sealed class HoldingRunner(IModelRunner inner, Func<IReadOnlyList<RunnerSequence>, bool> holdWhen) : IModelRunner
{
    private readonly ManualResetEventSlim _held = new();
    private readonly ManualResetEventSlim _resumed = new();

    public IPrefixBlockStore? PrefixBlocks => inner.PrefixBlocks;

    public ModelInfo Info => inner.Info;

    public int MaxBatchSize => inner.MaxBatchSize;

    /// <summary>A hold at the given decode step (one new token each) of a batch of <paramref name="sequences"/>.</summary>
    public static Func<IReadOnlyList<RunnerSequence>, bool> AtDecodeStep(int sequences, int step)
    {
        var steps = 0;
        return batch => batch.Count == sequences && batch.All(sequence => sequence.NewTokens.Length == 1) && ++steps == step;
    }

    /// <summary>Waits until the engine is held; false when it did not get there in time.</summary>
    public bool WaitUntilHeld(TimeSpan timeout) => _held.Wait(timeout);

    public void Resume() => _resumed.Set();

    public ReadOnlyMemory<float> Execute(IReadOnlyList<RunnerSequence> batch)
    {
        if (!_held.IsSet && holdWhen(batch))
        {
            _held.Set();
            _resumed.Wait(TimeSpan.FromMinutes(1)); // a failed test must not leave the engine's thread waiting forever
        }

        return inner.Execute(batch);
    }

    public void Release(long sequenceId) => inner.Release(sequenceId);

    public void Dispose()
    {
        _resumed.Set();
        inner.Dispose();
        _held.Dispose();
        _resumed.Dispose();
    }
}
