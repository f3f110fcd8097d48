using Microsoft.AspNetCore.Http;

namespace Appliance.Api.OpenAi;

/// <summary>
/// A generation request's time limit, shared by the chat, completions, Messages and Responses handlers.
/// <see cref="Token"/> is cancelled at <see cref="ApiLimits.RequestTimeout"/> or when the client leaves; it stops the
/// generation and is looked at before each frame, never handed to a write: Kestrel aborts the connection when a write in
/// progress is cancelled, and a client reading slowly would get a reset instead of the timeout event. Writes use
/// <see cref="Writes"/> (the client leaving). A client that has stopped reading would then hold its handler (its
/// concurrent-stream quota, a drain, its audit record) until Kestrel's minimum data rate gave up, minutes later: so
/// once <see cref="ApiLimits.RequestTimeoutGrace"/> has passed after the timeout, the connection is closed.
/// </summary>
internal sealed class RequestDeadline : IDisposable
{
    private readonly HttpContext _http;
    private readonly TimeSpan _grace;
    private readonly CancellationTokenSource _timeout;
    private readonly CancellationTokenSource _either;
    private readonly CancellationTokenRegistration _onTimeout;
    private readonly CancellationTokenRegistration _onClientLeft;
    private readonly Lock _gate = new();
    private ITimer? _closer;
    private volatile bool _clientLeftFirst;
    private bool _disposed;

    public RequestDeadline(HttpContext http, ApiLimits limits)
    {
        _http = http;
        _grace = limits.RequestTimeoutGrace;
        _timeout = new CancellationTokenSource(limits.RequestTimeout);
        _either = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, _timeout.Token);
        _onClientLeft = http.RequestAborted.Register(() => _clientLeftFirst = !_timeout.IsCancellationRequested);
        _onTimeout = _timeout.Token.Register(StartClosing);
    }

    /// <summary>Cancelled at the timeout or when the client leaves.</summary>
    public CancellationToken Token => _either.Token;

    /// <summary>For writes: cancelled when the client leaves, or when the deadline closes the connection.</summary>
    public CancellationToken Writes => _http.RequestAborted;

    /// <summary>Whether the timeout came before the client left: what the audit record calls "timeout".</summary>
    public bool TimedOut => _timeout.IsCancellationRequested && !_clientLeftFirst;

    /// <summary>Whether the request was ended by either: the client leaving or the timeout.</summary>
    public bool Ended => _http.RequestAborted.IsCancellationRequested || _timeout.IsCancellationRequested;

    /// <summary>The audit record's finish reason for a request <see cref="Ended"/> before its answer was whole.</summary>
    public string EndReason => TimedOut ? "timeout" : "cancelled";

    /// <summary>
    /// Runs an answer under the deadline. One ended before it was whole is audited as <see cref="EndReason"/> with the
    /// tokens generated until then (a client must not escape its quota by hanging up) and, on a timeout, told so by
    /// <paramref name="tellTimeout"/> where the client can still read. One already whole keeps its finish reason when
    /// its last frames do not reach a client that left or stopped reading.
    /// </summary>
    public async Task RunAsync(Func<CancellationToken, Task> answer, Func<bool> whole, ChoiceStreams streams, Func<Task> tellTimeout)
    {
        try
        {
            await answer(Token);
        }
        catch (OperationCanceledException) when (Ended && !whole())
        {
            GenerationResponder.Finished(_http, EndReason, streams.GeneratedTokens);
            if (TimedOut)
            {
                try
                {
                    await tellTimeout();
                }
                catch (Exception exception) when (exception is IOException or OperationCanceledException)
                {
                    // The client left, or stopped reading and the deadline closed the connection: nobody to tell.
                }
            }
        }
        catch (OperationCanceledException) when (Ended)
        {
            // A whole answer: audited as answered.
        }
    }

    /// <summary>
    /// Writes and flushes one frame of a stream, in <paramref name="parts"/>. <paramref name="check"/> (the deadline's
    /// <see cref="Token"/> while the answer is unfinished, none once it is whole or for the timeout's own event) is
    /// looked at first and never handed to the write: only the client leaving, or the deadline closing the connection of
    /// a client that stopped reading, cancels the write itself (see the class summary).
    /// </summary>
    public static async Task SendFrameAsync(HttpResponse response, CancellationToken check, params ReadOnlyMemory<byte>[] parts)
    {
        check.ThrowIfCancellationRequested();
        var clientLeft = response.HttpContext.RequestAborted;
        foreach (var part in parts)
        {
            await response.Body.WriteAsync(part, clientLeft);
        }

        await response.Body.FlushAsync(clientLeft);
    }

    private void StartClosing()
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                _closer = TimeProvider.System.CreateTimer(_ => Close(), null, _grace, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void Close()
    {
        lock (_gate)
        {
            // Once disposed the handler has returned and the context may already serve another request.
            if (!_disposed)
            {
                _http.Abort();
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _closer?.Dispose();
        }

        _onTimeout.Dispose();
        _onClientLeft.Dispose();
        _either.Dispose();
        _timeout.Dispose();
    }
}
