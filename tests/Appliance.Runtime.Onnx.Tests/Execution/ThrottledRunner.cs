using Appliance.Engine;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>Delegates to a real runner, waiting at least a fixed time per run.</summary>
internal sealed class ThrottledRunner(IModelRunner inner, TimeSpan delay) : IModelRunner
{
    public IPrefixBlockStore? PrefixBlocks => inner.PrefixBlocks;

    public ModelInfo Info => inner.Info;

    public int MaxBatchSize => inner.MaxBatchSize;

    public ReadOnlyMemory<float> Execute(IReadOnlyList<RunnerSequence> batch)
    {
        Thread.Sleep(delay);
        return inner.Execute(batch);
    }

    public void Release(long sequenceId) => inner.Release(sequenceId);

    public void Dispose() => inner.Dispose();
}
