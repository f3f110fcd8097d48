using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Identity;

/// <summary>
/// Reads the realm's OpenID metadata from the start, through the bearer handler's own configuration manager, until it
/// has been read once (the manager then keeps its last copy through later outages, so tokens are still checked). Until
/// then a token cannot be checked at all: the handler would refuse it as "issuer not trusted", a 401 that blames the
/// caller for a wrong Identity:Authority or a Keycloak that is down. This says why instead, once in the log and in
/// each refusal (503).
/// </summary>
internal sealed partial class RealmMetadataWatch(IOptionsMonitor<JwtBearerOptions> bearer, ILogger<RealmMetadataWatch> logger, TimeProvider time) : BackgroundService
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan LongestRetry = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan LogAgainAfter = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan DiagnosisLimit = TimeSpan.FromSeconds(10);

    private readonly TaskCompletionSource _firstAttempt = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly JwtBearerOptions _options = bearer.Get(JwtBearerDefaults.AuthenticationScheme);
    private volatile bool _read;
    private volatile string? _reason;

    /// <summary>
    /// Why the realm cannot be read, or null when it was read once (or no realm is configured). A request that comes
    /// before the first attempt has ended waits for it, briefly, so that the first callers are not told the wrong thing.
    /// </summary>
    public async Task<string?> UnreadableAsync(CancellationToken cancellation)
    {
        await _firstAttempt.Task.WaitAsync(TimeSpan.FromSeconds(5), time, cancellation).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return _read ? null : _reason;
    }

    /// <summary>
    /// For readiness: true until the metadata was read once, the first attempt included (a Keycloak that does not
    /// answer holds it for the backchannel's timeout, a minute, and a node must not turn ready meanwhile); false
    /// without a realm (the development identity).
    /// </summary>
    public bool Unread => _options.ConfigurationManager is not null && !_read;

    /// <summary>A token's signature was checked, so the realm was read (by a request, between two of our attempts).</summary>
    public void Confirmed() => _read = true;

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        if (_options.ConfigurationManager is not { } manager)
        {
            _firstAttempt.TrySetResult(); // the development identity: no realm to read
            return;
        }

        var address = _options.MetadataAddress ?? _options.Authority ?? string.Empty;
        var retry = FirstRetry;
        DateTimeOffset? logged = null;
        try
        {
            while (!_read)
            {
                try
                {
                    // IdentityModel fetches without our token: a fetch that hangs must not hold the node's shutdown.
                    await manager.GetConfigurationAsync(stopping).WaitAsync(stopping);
                    _read = true;
                }
                catch (Exception exception) when (exception is not OperationCanceledException || !stopping.IsCancellationRequested)
                {
                    // Answer the waiting requests first; the diagnosis takes another round trip.
                    _reason = exception.GetBaseException().Message.ReplaceLineEndings(" ");
                    _firstAttempt.TrySetResult();
                    _reason = await DiagnoseAsync(_options, address, exception, stopping);
                    if (!_read && (logged is null || time.GetUtcNow() - logged >= LogAgainAfter))
                    {
                        LogUnreadable(logger, address, _reason);
                        logged = time.GetUtcNow();
                    }
                }

                if (!_read)
                {
                    await Task.Delay(retry, time, stopping);
                    retry = retry * 2 < LongestRetry ? retry * 2 : LongestRetry;
                    // IdentityModel 8.x fetches again while it holds no copy; this keeps it so should a later version
                    // answer from its back-off (up to Identity:JwksRefreshInterval). The recovery test covers the path.
                    manager.RequestRefresh();
                }
            }

            if (logged is not null)
            {
                LogReadableAgain(logger, address);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // stopping
        }
        finally
        {
            _firstAttempt.TrySetResult();
        }
    }

    /// <summary>
    /// What the realm's address answers, asked once more through the same channel: the handler's own error hides the
    /// status and the body (IdentityModel's PII rule), yet a 404 (no realm of that name) or a refused connection is
    /// what tells the operator what to fix.
    /// </summary>
    private static async Task<string> DiagnoseAsync(JwtBearerOptions options, string address, Exception failure, CancellationToken stopping)
    {
        if (options.Backchannel is not { } channel)
        {
            return failure.GetBaseException().Message;
        }

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        limit.CancelAfter(DiagnosisLimit);
        try
        {
            using var response = await channel.GetAsync(address, limit.Token);
            return response.IsSuccessStatusCode
                ? $"it answers {(int)response.StatusCode}, but not with metadata that can be used: {failure.GetBaseException().Message}"
                : $"it answers {(int)response.StatusCode} {response.ReasonPhrase}" + (response.StatusCode == System.Net.HttpStatusCode.NotFound ? ": no realm of that name there" : string.Empty);
        }
        catch (HttpRequestException exception)
        {
            return exception.InnerException is { } inner && inner.Message != exception.Message ? $"{exception.Message} {inner.Message}" : exception.Message;
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
            return $"no answer within {DiagnosisLimit.TotalSeconds:0} s";
        }
    }

    [LoggerMessage(EventId = 3025, Level = LogLevel.Error,
        Message = "The realm's OpenID metadata at {Address} cannot be read ({Reason}): every token is answered 503 until it can. Check Identity:Authority (the realm's name included) and that Keycloak is up and reachable from this node")]
    private static partial void LogUnreadable(ILogger logger, string address, string reason);

    [LoggerMessage(EventId = 3026, Level = LogLevel.Information, Message = "The realm's OpenID metadata at {Address} was read: tokens are checked again")]
    private static partial void LogReadableAgain(ILogger logger, string address);
}
