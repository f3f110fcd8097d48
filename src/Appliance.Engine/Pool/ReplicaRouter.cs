using System.Threading.Channels;
using Appliance.Engine.Requests;

namespace Appliance.Engine.Pool;

/// <summary>One replica of a model: its engine and the device it runs on.</summary>
public sealed record Replica(int Index, string DeviceId, GenerationEngine Engine);

/// <summary>
/// A model served by several replicas: each request goes to the healthy replica with the lowest expected wait. A
/// request whose replica fails before it produced any output is submitted again on another replica, unnoticed by the
/// caller; one that had already streamed text fails with the replica's error.
/// </summary>
public sealed class ReplicaRouter : IEngineClient
{
    public ReplicaRouter(IReadOnlyList<Replica> replicas)
    {
        if (replicas.Count == 0)
        {
            throw new ArgumentException("a model needs at least one replica", nameof(replicas));
        }

        Replicas = replicas;
    }

    public IReadOnlyList<Replica> Replicas { get; }

    public ModelInfo Model => Replicas[0].Engine.Model;

    public ITokenizer Tokenizer => Replicas[0].Engine.Tokenizer;

    public int QueuedRequests => Replicas.Sum(r => r.Engine.QueuedRequests);

    public int RunningRequests => Replicas.Sum(r => r.Engine.RunningRequests);

    public GenerationStream Submit(GenerationRequest request)
    {
        if (Replicas.Count == 1)
        {
            return Replicas[0].Engine.Submit(request);
        }

        var (replica, stream) = SubmitToBest(request, new HashSet<int>());
        return Retrying(request, replica, stream);
    }

    /// <summary>Healthy replicas first, then the lowest expected wait (the load of the batch while a rate is unknown).</summary>
    public IEnumerable<Replica> Ranked(IReadOnlySet<int> excluded) => Replicas
        .Where(r => !excluded.Contains(r.Index))
        .OrderBy(r => r.Engine.Healthy ? 0 : 1)
        .ThenBy(Score)
        .ThenBy(r => r.Index);

    private static double Score(Replica replica)
    {
        var engine = replica.Engine;
        var load = (engine.QueuedRequests + engine.RunningRequests) / (double)engine.MaxBatchSize;
        return engine.ExpectedWait is { } wait ? wait.TotalSeconds + load * 1e-6 : load;
    }

    /// <summary>Submits to the best replica that accepts; an overloaded replica passes the request to the next.</summary>
    private (Replica Replica, GenerationStream Stream) SubmitToBest(GenerationRequest request, IReadOnlySet<int> excluded)
    {
        EngineOverloadedException? overloaded = null;
        EngineFailedException? restarting = null;
        foreach (var replica in Ranked(excluded))
        {
            try
            {
                return (replica, replica.Engine.Submit(request));
            }
            catch (EngineOverloadedException exception)
            {
                overloaded = overloaded is null || exception.RetryAfterSeconds < overloaded.RetryAfterSeconds ? exception : overloaded;
            }
            catch (EngineFailedException exception)
            {
                restarting = exception; // its engine is restarting: another replica may take the request
            }
        }

        throw (Exception?)overloaded ?? (Exception?)restarting ?? new EngineOverloadedException($"Model {Model.Id} has no replica left to run the request.", QueuedRequests);
    }

    private GenerationStream Retrying(GenerationRequest request, Replica first, GenerationStream firstStream)
    {
        var channel = Channel.CreateUnbounded<GenerationDelta>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var current = firstStream;
        var cancelled = new CancellationTokenSource();
        _ = Task.Run(async () =>
        {
            var tried = new HashSet<int> { first.Index };
            var producedOutput = false;
            while (true)
            {
                try
                {
                    await foreach (var delta in current.WithCancellation(cancelled.Token).ConfigureAwait(false))
                    {
                        producedOutput |= delta.TokenIds.Count > 0;
                        channel.Writer.TryWrite(delta);
                    }

                    channel.Writer.TryComplete();
                    return;
                }
                catch (Exception failure) when (failure is ModelRunException { ProducedOutput: false } or EngineFailedException
                    && !producedOutput && !cancelled.IsCancellationRequested && tried.Count < Replicas.Count)
                {
                    try
                    {
                        var (next, stream) = SubmitToBest(request, tried);
                        tried.Add(next.Index);
                        current = stream;
                    }
                    catch (Exception resubmit) when (resubmit is EngineOverloadedException or EngineFailedException or ObjectDisposedException)
                    {
                        channel.Writer.TryComplete(failure);
                        return;
                    }
                }
                catch (OperationCanceledException)
                {
                    channel.Writer.TryComplete();
                    return;
                }
                catch (Exception exception)
                {
                    channel.Writer.TryComplete(exception);
                    return;
                }
            }
        });
        return new GenerationStream(request.RequestId, channel.Reader, () =>
        {
            cancelled.Cancel();
            current.Dispose();
        });
    }
}
