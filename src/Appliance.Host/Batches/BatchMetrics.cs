using System.Diagnostics.Metrics;

namespace Appliance.Host.Batches;

/// <summary>
/// What the node's batch runner does, for alerts beside the requests' own metrics (which count a batch's requests as
/// any others): its requests by what came of them, the batches it finished by state, and what is left of the one it runs.
/// </summary>
internal sealed class BatchMetrics : IDisposable
{
    private readonly Meter _meter = new(Metrics.ApplianceMetrics.MeterName);
    private readonly Counter<long> _requests;
    private readonly Counter<long> _finished;
    private int _left;

    public BatchMetrics()
    {
        _requests = _meter.CreateCounter<long>("batch_requests_total", "requests",
            "Requests batches sent, by outcome: answered, error (an answer that is one), waited (a busy model or a quota: sent again later)");
        _finished = _meter.CreateCounter<long>("batches_finished_total", "batches", "Batches this node finished, by final state");
        _meter.CreateObservableGauge("batch_requests_left", () => Volatile.Read(ref _left), "requests", "Requests of the batch this node runs that have no answer yet");
    }

    public void Answered(bool error) => _requests.Add(1, new KeyValuePair<string, object?>("outcome", error ? "error" : "answered"));

    public void Waited() => _requests.Add(1, new KeyValuePair<string, object?>("outcome", "waited"));

    public void Finished(string status) => _finished.Add(1, new KeyValuePair<string, object?>("status", status));

    /// <summary>Sets what is left of the running batch (0 once none runs).</summary>
    public void Left(int requests) => Volatile.Write(ref _left, requests);

    public void AnsweredOne() => Interlocked.Decrement(ref _left);

    public void Dispose() => _meter.Dispose();
}
