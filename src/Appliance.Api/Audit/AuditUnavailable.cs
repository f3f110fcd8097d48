using Microsoft.AspNetCore.Http;

namespace Appliance.Api.Audit;

/// <summary>The RFC 7807 answer outside /v1 when the audit log could not record a request, which is then not served.</summary>
public static class AuditUnavailable
{
    /// <param name="what">What was refused, e.g. "this read" or "this administrative action".</param>
    public static IResult Problem(string what) =>
        Results.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Audit log unavailable",
            detail: $"The audit log cannot record {what}, so it was not carried out. Please retry later.");
}
