namespace Appliance.Api.Admin;

/// <summary>
/// Counts the API requests in flight and, once the node is draining, turns new ones away so that the running ones can
/// finish (the rolling upgrade drains a node before it replaces the appliance).
/// </summary>
public sealed class DrainGate
{
    private readonly Lock _gate = new();
    private int _inFlight;
    private bool _draining;
    private TaskCompletionSource _idle = NewIdle(completed: true);

    public bool Draining
    {
        get
        {
            lock (_gate)
            {
                return _draining;
            }
        }
    }

    public int InFlight
    {
        get
        {
            lock (_gate)
            {
                return _inFlight;
            }
        }
    }

    /// <summary>Admits a request unless the node is draining.</summary>
    public bool TryEnter()
    {
        lock (_gate)
        {
            if (_draining)
            {
                return false;
            }

            if (_inFlight++ == 0)
            {
                _idle = NewIdle(completed: false);
            }

            return true;
        }
    }

    public void Exit()
    {
        lock (_gate)
        {
            if (--_inFlight == 0)
            {
                _idle.TrySetResult();
            }
        }
    }

    public void Drain()
    {
        lock (_gate)
        {
            _draining = true;
        }
    }

    public void Resume()
    {
        lock (_gate)
        {
            _draining = false;
        }
    }

    /// <summary>Completes when no request is in flight, or when the timeout passes (false then).</summary>
    public async Task<bool> WhenIdleAsync(TimeSpan timeout, CancellationToken cancellation)
    {
        Task idle;
        lock (_gate)
        {
            idle = _idle.Task;
        }

        try
        {
            await idle.WaitAsync(timeout, cancellation);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private static TaskCompletionSource NewIdle(bool completed)
    {
        var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (completed)
        {
            source.SetResult();
        }

        return source;
    }
}
