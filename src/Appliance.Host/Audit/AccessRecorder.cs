using Appliance.Api.Audit;
using Appliance.Audit;

namespace Appliance.Host.Audit;

/// <summary>
/// Stores a request's accepted record before its answer starts (for /audit an audit-read record); when that fails the
/// caller refuses the request: nothing is served that the audit log does not know about.
/// </summary>
internal sealed class AccessRecorder(AuditLog log, AuditRecords records) : IAccessRecorder
{
    public async Task<bool> TryAcceptAsync(HttpContext http)
    {
        var audit = RequestAudit.Of(http);
        var kind = http.Request.Path.StartsWithSegments("/audit") ? AuditKinds.AuditRead
            : http.Request.Path.StartsWithSegments("/admin") ? AuditKinds.Admin
            : AuditKinds.Accepted;
        try
        {
            await log.RecordAsync(records.For(http, audit, kind, status: null));
            audit.Accepted = true;
            return true;
        }
        catch (AuditUnavailableException)
        {
            audit.Reason = "audit log unavailable";
            return false;
        }
    }
}
