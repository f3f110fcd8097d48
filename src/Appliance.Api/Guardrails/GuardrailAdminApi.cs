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
            // Names a rule gives that are no model's id or alias here: that rule guards nothing under them.
            unknownModels = guardrails.NamedModels
                .Where(n => !catalog.Entries.Any(e => string.Equals(e.Id, n.Model, StringComparison.OrdinalIgnoreCase) || e.Aliases.Contains(n.Model, StringComparer.OrdinalIgnoreCase)))
                .Select(n => new { rule = n.Rule, model = n.Model }),
        }));
        return admin;
    }
}
