using System.Diagnostics;

namespace Appliance.Engine.Scheduling;

/// <summary>
/// How fast the engine finishes requests, over its most recent completions, so that a refused caller can be told
/// when to come back (Retry-After) from the queue's depth rather than a fixed guess.
/// </summary>
internal sealed class ServiceRate(int window = 64)
{
    private readonly Queue<long> _finishedAt = new();
    private readonly Lock _gate = new();

    public void Finished()
    {
        lock (_gate)
        {
            _finishedAt.Enqueue(Stopwatch.GetTimestamp());
            if (_finishedAt.Count > window)
            {
                _finishedAt.Dequeue();
            }
        }
    }

    /// <summary>Requests finished per second, or null before there are two completions to measure between.</summary>
    public double? PerSecond()
    {
        lock (_gate)
        {
            if (_finishedAt.Count < 2)
            {
                return null;
            }

            var span = Stopwatch.GetElapsedTime(_finishedAt.Peek(), Stopwatch.GetTimestamp()).TotalSeconds;
            return span > 0 ? (_finishedAt.Count - 1) / span : null;
        }
    }

    /// <summary>How long a request with <paramref name="ahead"/> requests before it will likely wait; null before there is a rate.</summary>
    public TimeSpan? ExpectedWait(int ahead) =>
        ahead <= 0 ? TimeSpan.Zero : PerSecond() is { } rate ? TimeSpan.FromSeconds(ahead / rate) : null;

    /// <summary>Seconds until a place in a queue of <paramref name="queued"/> frees up: at least 1, at most 60.</summary>
    public int RetryAfterSeconds(int queued) =>
        PerSecond() is { } rate ? (int)Math.Clamp(Math.Ceiling(queued / rate), 1, 60) : 1;
}
