namespace Appliance.Engine.Scheduling;

/// <summary>
/// How long recent requests held a batch slot (from their first step to their end), so that a caller can be told
/// how long it would wait and when to come back (Retry-After) from the queue's depth rather than a fixed guess.
/// </summary>
/// <remarks>
/// Service times, not completions per second up to now: a rate measured to the present decays while the engine is
/// idle, so after a quiet minute it made an empty engine look slow and refused requests it would start at once.
/// </remarks>
internal sealed class ServiceRate(int slots, int window = 64)
{
    private readonly Queue<double> _serviceSeconds = new();
    private readonly Lock _gate = new();
    private double _sum;

    /// <summary>Records a request that held a slot for <paramref name="service"/>.</summary>
    public void Finished(TimeSpan service)
    {
        lock (_gate)
        {
            _serviceSeconds.Enqueue(service.TotalSeconds);
            _sum += service.TotalSeconds;
            if (_serviceSeconds.Count > window)
            {
                _sum -= _serviceSeconds.Dequeue();
            }
        }
    }

    /// <summary>The mean time a request holds a slot, or null before any finished.</summary>
    public double? MeanServiceSeconds()
    {
        lock (_gate)
        {
            return _serviceSeconds.Count == 0 ? null : Math.Max(_sum / _serviceSeconds.Count, 0);
        }
    }

    /// <summary>
    /// How long a request with <paramref name="waitingAhead"/> waiting requests before it will likely wait when
    /// <paramref name="freeSlots"/> slots are free now: nothing when it can start at once, otherwise until enough
    /// running requests finish (slots free up at <c>slots / mean service time</c>). Null before there is a measure.
    /// </summary>
    public TimeSpan? ExpectedWait(int waitingAhead, int freeSlots)
    {
        var releases = waitingAhead - Math.Max(freeSlots, 0) + 1;
        return releases <= 0 ? TimeSpan.Zero : MeanServiceSeconds() is { } mean ? TimeSpan.FromSeconds(releases * mean / slots) : null;
    }

    /// <summary>Seconds until a place in a queue of <paramref name="queued"/> frees up: at least 1, at most 60.</summary>
    public int RetryAfterSeconds(int queued) =>
        MeanServiceSeconds() is { } mean ? (int)Math.Clamp(Math.Ceiling(queued * mean / slots), 1, 60) : 1;
}
