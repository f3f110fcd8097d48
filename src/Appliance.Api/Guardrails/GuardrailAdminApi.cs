using Appliance.Api.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Appliance.Api.Guardrails;

/// <summary>
/// GET /admin/guardrails: the node's rules as written, which of them screen each model it knows, and their fingerprint
/// (the same on every node of a cluster, or the nodes guard differently).
/// </summary>
public static class GuardrailAdminApi
{
    public static RouteGroupBuilder MapGuardrailAdminApi(this RouteGroupBuilder admin)
    {
        admin.MapGet("/guardrails", (GuardrailSet guardrails, IModelCatalog catalog) => Results.Json(new
        {
            fingerprint = guardrails.Fingerprint,
            rules = guardrails.Describe(),
            models = catalog.Entries.OrderBy(e => e.Id, StringComparer.Ordinal).ToDictionary(e => e.Id, e => guardrails.RulesFor(e.Id) is var (input, output)
                ? new { input, output } : null),
        }));
        return admin;
    }
}
