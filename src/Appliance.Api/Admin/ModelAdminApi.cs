using Appliance.Api.Audit;
using Appliance.Api.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Appliance.Api.Admin;

/// <summary>
/// /admin/models/{id}/load, /unload and /reload: put a declared model on the node's devices, take it off, or replace it
/// with the folder's current version (verified against its manifest). Each call is in the audit log before it acts.
/// </summary>
public static class ModelAdminApi
{
    public static RouteGroupBuilder MapModelAdminApi(this RouteGroupBuilder admin)
    {
        // <id>/<action>, the id taking every segment before the action: "org/model" ids work as sent, or with %2F.
        admin.MapPost("/models/{**path}", (HttpContext http, string path, IModelAdministration models, IAccessRecorder recorder) =>
        {
            var cut = path.LastIndexOf('/');
            var id = cut > 0 ? Uri.UnescapeDataString(path[..cut]) : string.Empty;
            return (cut > 0 ? path[(cut + 1)..] : path) switch
            {
                "load" when id.Length > 0 => Act(http, id, "load", recorder, token => models.LoadAsync(id, token)),
                "unload" when id.Length > 0 => Act(http, id, "unload", recorder, token => models.UnloadAsync(id, token)),
                "reload" when id.Length > 0 => Act(http, id, "reload", recorder, token => models.ReloadAsync(id, token)),
                _ => Task.FromResult(Results.Problem("Use POST /admin/models/<id>/load, /unload or /reload.", statusCode: StatusCodes.Status404NotFound, title: "No such action")),
            };
        });
        return admin;
    }

    private static async Task<IResult> Act(HttpContext http, string id, string action, IAccessRecorder recorder, Func<CancellationToken, Task<ModelActionResult>> run)
    {
        var audit = RequestAudit.Of(http);
        audit.Model = id;
        audit.Reason = $"{action} model {id}";
        if (!await recorder.TryAcceptAsync(http))
        {
            return AuditUnavailable.Problem("this administrative action");
        }

        // The intent names the model (admin.action); the outcome names it in its detail only: a record ending with a
        // model is what usage reports count as a request of that model.
        audit.Model = null;
        var result = await run(http.RequestAborted);
        audit.Reason = $"{action} model {id}: {result.Message}";
        return result.Outcome switch
        {
            ModelActionOutcome.Done => Results.Json(new { model = id, action, message = result.Message }),
            ModelActionOutcome.NotDeclared => Results.Problem(result.Message, statusCode: StatusCodes.Status404NotFound, title: "No such model"),
            ModelActionOutcome.Conflict => Results.Problem(result.Message, statusCode: StatusCodes.Status409Conflict, title: $"The model cannot be {Past(action)}"),
            _ => Results.Problem(result.Message, statusCode: StatusCodes.Status422UnprocessableEntity, title: $"The model could not be {Past(action)}"),
        };
    }

    private static string Past(string action) => action == "unload" ? "unloaded" : $"{action}ed";
}
