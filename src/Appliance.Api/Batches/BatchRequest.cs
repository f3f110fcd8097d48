using Microsoft.AspNetCore.Http;

namespace Appliance.Api.Batches;

/// <summary>
/// Marks a request a batch sends (set by the host on its in-process requests only): it runs in the engine's batch
/// class, behind callers' interactive requests (as service_tier "flex" does), never starved.
/// </summary>
public sealed class BatchRequest
{
    public static bool Is(HttpContext http) => http.Features.Get<BatchRequest>() is not null;
}
