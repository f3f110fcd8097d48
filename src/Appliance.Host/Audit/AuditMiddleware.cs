using Appliance.Api.Audit;
using Appliance.Audit;

namespace Appliance.Host.Audit;

/// <summary>
/// Gives every request (but /health and the console's static files) its audit state and records how it ended: completed (after an accepted record),
/// refused (401, 403, 4xx, 429, 503...), an audit read, or an administrator's action.
/// </summary>
internal sealed partial class AuditMiddleware(RequestDelegate next, AuditLog log, AuditRecords records, TimeProvider time, ILogger<AuditMiddleware> logger)
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

            try
            {
                await log.RecordAsync(records.For(http, audit, KindOf(http, audit, status), status));
            }
            catch (AuditUnavailableException exception)
            {
                LogEndNotRecorded(logger, exception, http.TraceIdentifier, http.Request.Path);
            }
        }
    }

    public const string RequestIdHeader = "X-Request-Id";

    private static string KindOf(HttpContext http, RequestAudit audit, int status) =>
        audit.Accepted ? AuditKinds.Completed
        : status >= 400 ? AuditKinds.Refused
        : http.Request.Path.StartsWithSegments("/admin") && !HttpMethods.IsGet(http.Request.Method) ? AuditKinds.Admin
        : http.Request.Path.StartsWithSegments("/console/audit") ? AuditKinds.AuditRead // an auditor reading the trail in the console
        : AuditKinds.Completed;

    [LoggerMessage(EventId = 4001, Level = LogLevel.Error, Message = "The end of request {RequestId} on {Path} could not be recorded in the audit log")]
    private static partial void LogEndNotRecorded(ILogger logger, Exception exception, string requestId, string path);
}
