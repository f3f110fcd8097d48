using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;

namespace Appliance.Host.Identity;

/// <summary>
/// Reads the realm's OpenID metadata from the start, through the bearer handler's own configuration manager, until it
/// has been read once (the handler's cache then takes over, keeping the last good copy through later outages). Until
/// then a token cannot be checked at all: the handler would refuse it as "issuer not trusted", a 401 that blames the
/// caller for a wrong Identity:Authority or a Keycloak that is down. This says why instead, once in the log and in
/// each refusal (503).
/// </summary>
internal sealed partial class RealmMetadataWatch(IOptionsMonitor<JwtBearerOptions> bearer, ILogger<RealmMetadataWatch> logger, TimeProvider time) : BackgroundService
{
    private static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan LongestRetry = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan LogAgainAfter = TimeSpan.FromMinutes(10);

    private readonly TaskCompletionSource _firstAttempt = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile string? _unreadable;

    /// <summary>
    /// Why the realm cannot be read, or null when it can (or no realm is configured); a request that comes before the
    /// first attempt has ended waits for it, briefly, so that the first callers are not told the wrong thing.
    /// </summary>
    public async Task<string?> UnreadableAsync(CancellationToken cancellation)
    {
        await _firstAttempt.Task.WaitAsync(TimeSpan.FromSeconds(5), time, cancellation).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        return _unreadable;
    }

    /// <summary>A token was validated, so the realm was read (by a request, between two of our attempts).</summary>
    public void Confirmed() => _unreadable = null;

    protected override async Task ExecuteAsync(CancellationToken stopping)
    {
        var options = bearer.Get(JwtBearerDefaults.AuthenticationScheme);
        if (options.ConfigurationManager is not { } manager)
        {
            _firstAttempt.TrySetResult(); // the development identity: no realm to read
            return;
        }

        var address = options.MetadataAddress ?? options.Authority ?? string.Empty;
        var retry = FirstRetry;
        DateTimeOffset? logged = null;
        while (true)
        {
            try
            {
                await manager.GetConfigurationAsync(stopping);
                if (logged is not null)
                {
                    LogReadableAgain(logger, address);
                }

                _unreadable = null;
                _firstAttempt.TrySetResult();
                return;
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                _firstAttempt.TrySetResult();
                return;
            }
            catch (Exception exception)
            {
                _unreadable = await DiagnoseAsync(options, address, exception, stopping);
                _firstAttempt.TrySetResult();
                if (logged is null || time.GetUtcNow() - logged >= LogAgainAfter)
                {
                    LogUnreadable(logger, address, _unreadable);
                    logged = time.GetUtcNow();
                }
            }

            try
            {
                await Task.Delay(retry, time, stopping);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            retry = retry * 2 < LongestRetry ? retry * 2 : LongestRetry;
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

        try
        {
            using var response = await channel.GetAsync(address, stopping);
            return response.IsSuccessStatusCode
                ? $"it answers {(int)response.StatusCode}, but not with metadata that can be used: {failure.GetBaseException().Message}"
                : $"it answers {(int)response.StatusCode} {response.ReasonPhrase}" + (response.StatusCode == System.Net.HttpStatusCode.NotFound ? ": no realm of that name there" : string.Empty);
        }
        catch (HttpRequestException exception)
        {
            return exception.InnerException is { } inner && inner.Message != exception.Message ? $"{exception.Message} {inner.Message}" : exception.Message;
        }
        catch (TaskCanceledException) when (!stopping.IsCancellationRequested)
        {
            return $"no answer within {channel.Timeout.TotalSeconds:0} s";
        }
    }

    [LoggerMessage(EventId = 3025, Level = LogLevel.Error,
        Message = "The realm's OpenID metadata at {Address} cannot be read ({Reason}): every token is answered 503 until it can. Check Identity:Authority (the realm's name included) and that Keycloak is up and reachable from this node")]
    private static partial void LogUnreadable(ILogger logger, string address, string reason);

    [LoggerMessage(EventId = 3026, Level = LogLevel.Information, Message = "The realm's OpenID metadata at {Address} was read: tokens are checked again")]
    private static partial void LogReadableAgain(ILogger logger, string address);
}
