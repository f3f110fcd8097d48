using Appliance.Api.Audit;
using Appliance.Audit;

namespace Appliance.Host.Audit;

/// <summary>
/// Gives every request (but /health and the console's static files) its audit state and records how it ended: completed (after an accepted record),
/// refused (401, 403, 4xx, 429, 503...), an audit read, or an administrator's action.
/// </summary>
internal sealed partial class AuditMiddleware(
    RequestDelegate next, AuditLog log, AuditRecords records, Identity.UnauthenticatedFloodGuard flood, TimeProvider time, ILogger<AuditMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext http)
    {
        // Health probes and the console's public static files (scripts, styles, fonts) touch no data: not recorded.
        if (http.Request.Path.StartsWithSegments("/health") || http.Request.Path.StartsWithSegments("/_content") || http.Request.Path.StartsWithSegments("/_framework"))
        {
            await next(http);
            return;
        }

        var audit = http.Features.Get<RequestAudit>() ?? new RequestAudit(time.GetTimestamp()); // the metrics middleware may have begun it
        http.Features.Set(audit);
        http.Response.Headers[RequestIdHeader] = http.TraceIdentifier; // the audit record's request id, for support and auditors
        var address = Identity.UnauthenticatedFloodGuard.AddressOf(http);
        if (flood.IsThrottled(address) && !HasCredentials(http.Request) && http.Features.Get<Batches.BatchCaller>() is null && !WebConsole.ConsoleSession.Owns(http.Request.Path))
        {
            // An address that keeps failing authentication: no token validation and no audit write per request. The
            // console is exempt, so that people behind a shared address can still start a sign-in.
            await Identity.DenialResponses.TooManyUnauthenticated(http);
            await RecordSampleAsync(http, audit, address);
            return;
        }

        var failed = false;
        try
        {
            await next(http);
        }
        catch
        {
            failed = true;
            throw;
        }
        finally
        {
            var status = failed && !http.Response.HasStarted ? StatusCodes.Status500InternalServerError : http.Response.StatusCode;
            if (http.RequestAborted.IsCancellationRequested && audit.Accepted)
            {
                audit.FinishReason ??= "cancelled";
            }

            if (http.Items.ContainsKey(Identity.UnauthenticatedFloodGuard.RefusedItem)
                // A token the unreadable realm could not check counts too: during a Keycloak outage, forged tokens
                // would otherwise each be written to the audit log at the sender's pace.
                // A batch's request refused (its creator's key revoked) is no failed attempt from the creator's address.
                || ((status == StatusCodes.Status401Unauthorized || http.Items.ContainsKey(Identity.BearerEvents.RealmUnreadableItem))
                    && http.Features.Get<Batches.BatchCaller>() is null && !flood.RecordFailure(address)))
            {
                await RecordSampleAsync(http, audit, address); // one of a flood: counted, and sampled
            }
            else
            {
                await RecordAsync(http, records.For(http, audit, KindOf(http, audit, status), status));
            }
        }
    }

    private static bool HasCredentials(HttpRequest request) =>
        request.Headers.Authorization.Count > 0 || request.Cookies.Count > 0; // x-api-key on /v1/messages is an Authorization header by now

    /// <summary>Records one refusal of a flood in a hundred, with how many before it went unrecorded.</summary>
    private async Task RecordSampleAsync(HttpContext http, RequestAudit audit, string address)
    {
        if (flood.Throttled(address) is { } unrecorded)
        {
            audit.Reason = $"unauthenticated flood from {address}: {unrecorded} refusals before this one were counted, not recorded one by one";
            await RecordAsync(http, records.For(http, audit, AuditKinds.Refused, http.Response.StatusCode));
        }
    }

    private async Task RecordAsync(HttpContext http, AuditRecord record)
    {
        try
        {
            await log.RecordAsync(record);
        }
        catch (AuditUnavailableException exception)
        {
            LogEndNotRecorded(logger, exception, http.TraceIdentifier, http.Request.Path);
        }
    }

    public const string RequestIdHeader = "X-Request-Id";

    private static string KindOf(HttpContext http, RequestAudit audit, int status) =>
        audit.Accepted ? AuditKinds.Completed
        : status >= 400 ? AuditKinds.Refused
        : audit.TokenizerOnly ? AuditKinds.Tokenized
        : http.Request.Path.StartsWithSegments("/admin") && !HttpMethods.IsGet(http.Request.Method) ? AuditKinds.Admin
        : http.Request.Path.StartsWithSegments("/console/audit") ? AuditKinds.AuditRead // an auditor reading the trail in the console
        : AuditKinds.Completed;

    [LoggerMessage(EventId = 4001, Level = LogLevel.Error, Message = "The end of request {RequestId} on {Path} could not be recorded in the audit log")]
    private static partial void LogEndNotRecorded(ILogger logger, Exception exception, string requestId, string path);
}
