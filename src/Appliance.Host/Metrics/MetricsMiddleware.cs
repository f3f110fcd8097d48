using Appliance.Api.Audit;

namespace Appliance.Host.Metrics;

/// <summary>Measures every /v1 request (and the root tokenizer endpoints') from the facts its handlers record on the request (model, tokens, timings).</summary>
internal sealed class MetricsMiddleware(RequestDelegate next, ApplianceMetrics metrics, Api.Models.ITenancy tenancy, TimeProvider time)
{
    public async Task InvokeAsync(HttpContext http)
    {
        if (!Api.OpenAi.OpenAiApi.AnswersAsOpenAi(http.Request.Path)) // /v1, and the tokenizer endpoints at the root
        {
            await next(http);
            return;
        }

        var audit = http.Features.Get<RequestAudit>() ?? new RequestAudit(time.GetTimestamp());
        http.Features.Set(audit);
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
            // The caller is known once authentication ran further down the pipeline.
            var tenant = http.User.Identity?.IsAuthenticated == true ? tenancy.TenantOf(http.User) : "anonymous";
            metrics.Record(audit, failed && !http.Response.HasStarted ? StatusCodes.Status500InternalServerError : http.Response.StatusCode, tenant, time);
        }
    }
}
