using Appliance.Engine;
using Microsoft.ML.OnnxRuntime;

namespace Appliance.Runtime.Onnx.Embeddings;

/// <summary>
/// One encoder's ONNX Runtime session and the turns requests take on it: one model run at a time, requests queueing
/// again for each of their runs (SemaphoreSlim serves asynchronous waiters in order), so memory stays that of one small
/// run and a large request does not hold up a small one for its whole length. Waiting holds no thread. Closing it
/// (an unload, a reload) refuses new requests and lets the ones inside finish before the session goes.
/// </summary>
internal sealed class EncoderSession(InferenceSession session, string modelName) : IDisposable
{
    /// <summary>Most requests waiting for their turn; more are refused (429) rather than queued without end.</summary>
    public const int MaxWaitingRequests = 64;

    private readonly SemaphoreSlim _runs = new(1, 1);
    private readonly Lock _gate = new();
    private int _requests;
    private bool _closed;

    public InferenceSession Session { get; } = session;

    public bool HasTokenTypes { get; } = session.InputMetadata.ContainsKey("token_type_ids");

    /// <summary>
    /// Rows times the square of their width one run may hold: an export's attention keeps a [rows, heads, width, width]
    /// tensor, so 32 inputs of 512 tokens fit, and an input of 8,192 tokens (bge-m3) runs alone.
    /// </summary>
    public const long AttentionBudget = 32L * 512 * 512;

    /// <summary>
    /// Indices of the inputs in runs of similar length, shortest first: at most <paramref name="maxRows"/> a run, and no
    /// more than <see cref="AttentionBudget"/> allows at the run's width (always at least one).
    /// </summary>
    public static List<int[]> Runs(IReadOnlyList<int> lengths, int maxRows)
    {
        var runs = new List<int[]>();
        var run = new List<int>();
        foreach (var index in Enumerable.Range(0, lengths.Count).OrderBy(i => lengths[i]))
        {
            var width = (long)lengths[index]; // the widest so far: the inputs come shortest first
            if (run.Count > 0 && (run.Count == maxRows || (run.Count + 1) * width * width > AttentionBudget))
            {
                runs.Add([.. run]);
                run.Clear();
            }

            run.Add(index);
        }

        if (run.Count > 0)
        {
            runs.Add([.. run]);
        }

        return runs;
    }

    /// <summary>Runs a request's work while the session stays open for it.</summary>
    public async Task<T> EnterAsync<T>(Func<Task<T>> work)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_closed, modelName); // unloaded between the catalog lookup and here
            if (_requests > MaxWaitingRequests)
            {
                throw new EngineOverloadedException($"The model {modelName} has {MaxWaitingRequests} requests waiting. Please retry after a short wait.", MaxWaitingRequests);
            }

            _requests++;
        }

        try
        {
            return await work();
        }
        finally
        {
            bool last;
            lock (_gate)
            {
                last = --_requests == 0 && _closed;
            }

            if (last)
            {
                Release();
            }
        }
    }

    /// <summary>One model run, in its turn; a cancellation (the client left, the request's time is up) stops before it.</summary>
    public async Task<T> RunInTurnAsync<T>(Func<T> run, CancellationToken cancellation)
    {
        await _runs.WaitAsync(cancellation);
        try
        {
            cancellation.ThrowIfCancellationRequested();
            return run();
        }
        finally
        {
            _runs.Release();
        }
    }

    /// <summary>Pads token lists to the longest into input_ids, attention_mask and (zeros, or the given types) token_type_ids.</summary>
    public IDisposableReadOnlyCollection<OrtValue> Run(IReadOnlyList<IReadOnlyList<int>> rows, IReadOnlyList<IReadOnlyList<int>>? types, string output)
    {
        var count = rows.Count;
        var width = rows.Max(r => r.Count);
        var ids = new long[count * width];
        var mask = new long[count * width];
        var typeIds = new long[count * width];
        for (var row = 0; row < count; row++)
        {
            for (var j = 0; j < rows[row].Count; j++)
            {
                ids[(row * width) + j] = rows[row][j];
                mask[(row * width) + j] = 1;
                typeIds[(row * width) + j] = types?[row][j] ?? 0;
            }
        }

        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, [count, width]);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, [count, width]);
        using var typesValue = OrtValue.CreateTensorValueFromMemory(typeIds, [count, width]);
        var names = new List<string> { "input_ids", "attention_mask" };
        var values = new List<OrtValue> { idsValue, maskValue };
        if (HasTokenTypes)
        {
            names.Add("token_type_ids");
            values.Add(typesValue);
        }

        using var runOptions = new RunOptions();
        return Session.Run(runOptions, names, values, [output]);
    }

    /// <summary>Closes: new requests are refused; the session goes when the last request inside leaves (now, if none is).</summary>
    public void Dispose()
    {
        bool idle;
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            idle = _requests == 0;
        }

        if (idle)
        {
            Release();
        }
    }

    private void Release()
    {
        Session.Dispose();
        _runs.Dispose();
    }
}
