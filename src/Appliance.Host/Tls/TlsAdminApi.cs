using Appliance.Api.Audit;

namespace Appliance.Host.Tls;

/// <summary>
/// <c>GET /admin/tls</c> (the certificates and client CAs handshakes use now) and <c>POST /admin/tls/reload</c> (read
/// the changed TLS files now, as Ansible does after installing them): 200 with what is in use, or 409 naming the files
/// that cannot be read or used while the node goes on with what it read from them before. Reloading is audited like
/// any admin action.
/// </summary>
public static class TlsAdminApi
{
    public static RouteGroupBuilder MapTlsAdminApi(this RouteGroupBuilder admin)
    {
        admin.MapGet("/tls", (ClusterTlsFiles files) => Results.Json(files.InUse()));
        admin.MapPost("/tls/reload", Reload);
        return admin;
    }

    private static async Task<IResult> Reload(HttpContext http, ClusterTlsFiles files, IAccessRecorder recorder)
    {
        RequestAudit.Of(http).Reason = "read the node's TLS files again";
        if (!await recorder.TryAcceptAsync(http))
        {
            return AuditUnavailable.Problem("this administrative action");
        }

        var reload = files.Reload();
        if (reload.Errors.Count == 0)
        {
            return Results.Json(reload.InUse);
        }

        return Results.Problem(statusCode: StatusCodes.Status409Conflict, title: "TLS files cannot be read",
            detail: $"{string.Join("; ", reload.Errors)}. Not put in use: the node goes on with what it read from these files before (other changed files are in use); install usable files and reload again.",
            extensions: new Dictionary<string, object?> { ["inUse"] = reload.InUse });
    }
}
