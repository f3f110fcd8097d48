using Appliance.Engine;
using Microsoft.ML.OnnxRuntime;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>Which side of a row padding goes: left for concatenating caches, right for shared buffers.</summary>
internal enum PaddingSide
{
    Left,
    Right,
}

/// <summary>
/// How one model run uses the KV cache: the rows in the order they run, where each came from in the engine's batch,
/// the past tensors, the present tensors to write into (null: ONNX Runtime allocates them), and views to dispose.
/// </summary>
internal sealed record KvRunPlan(
    IReadOnlyList<RunnerSequence> Rows,
    int[] BatchIndex,
    OrtValue[] PastKeys,
    OrtValue[] PastValues,
    OrtValue[]? PresentKeys,
    OrtValue[]? PresentValues,
    int PastWidth,
    IReadOnlyList<OrtValue> Temporaries);

/// <summary>A KV cache layout: arranges the cache for each run and takes the run's present tensors back.</summary>
internal interface IKvCacheLayout : IDisposable
{
    PaddingSide Padding { get; }

    long Bytes { get; }

    /// <param name="placeAt">
    /// Where the batch's rows must lie for this run (a shared buffer's first slot), when a step runs its rows in more
    /// than one run; null: where a decode step or admission puts them.
    /// </param>
    KvRunPlan Prepare(IReadOnlyList<RunnerSequence> batch, bool decode, int? placeAt = null);

    /// <summary>Records the run's outputs; the layout disposes the present handles it does not keep.</summary>
    void Commit(KvRunPlan plan, IReadOnlyDictionary<string, OrtValue> presents);

    void Release(long sequenceId);

    /// <summary>
    /// Where a held sequence's position 0 lies in a layer's key (or value) cache, and the bytes from one head's
    /// positions to the next: enough to copy its positions out or in.
    /// </summary>
    (IntPtr Start, long HeadPitch) RowOf(long sequenceId, int layer, bool key);

    /// <summary>Gives a sequence not held yet a row of <paramref name="tokens"/> positions, to be filled through <see cref="RowOf"/>.</summary>
    void Reserve(long sequenceId, int tokens);
}
