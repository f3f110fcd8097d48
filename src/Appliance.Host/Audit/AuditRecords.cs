using Appliance.Api.Audit;
using Appliance.Api.Models;
using Appliance.Audit;
using Appliance.Identity;

namespace Appliance.Host.Audit;

/// <summary>Builds a request's audit record from what the request and its handlers learned.</summary>
internal sealed partial class AuditRecords(
    TimeProvider time, IModelAccess access, Microsoft.Extensions.Options.IOptions<Options.AuditOptions> options, Appliance.Audit.Content.ContentVault vault,
    CallerTeam teams, ILogger<AuditRecords> logger)
{
    public AuditRecord For(HttpContext http, RequestAudit audit, string kind, int? status)
    {
        var user = http.User;
        var now = time.GetTimestamp();
        var detail = audit.Reason ?? audit.Tools ?? Query(http); // for admin actions: what was done; for chat: the tools offered and called
        if (audit.Guardrails.Detail is { } guarded)
        {
            detail = detail is null ? guarded : $"{detail}; {guarded}";
        }

        if (audit.Origin is { } origin)
        {
            detail = detail is null ? origin : $"{origin}; {detail}";
        }

        string? content = null;
        if (kind != AuditKinds.Accepted && audit.Prompt is not null && audit.Model is not null)
        {
            try
            {
                content = Seal(audit);
            }
            catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or ArgumentException or System.Security.Cryptography.CryptographicException or System.Text.Json.JsonException)
            {
                // The request was served: its record (who, what, how much) matters more than its text.
                LogContentNotSealed(logger, exception, http.TraceIdentifier, audit.Model);
                detail = $"{detail}{(detail is null ? null : "; ")}content not recorded: {exception.Message}";
            }
        }

        return new AuditRecord
        {
            Time = time.GetUtcNow(),
            Kind = kind,
            RequestId = http.TraceIdentifier,
            Subject = user.FindFirst(ApplianceClaims.Subject)?.Value,
            Username = user.Identity?.IsAuthenticated == true ? user.Identity.Name : null,
            Client = user.FindFirst(ApplianceClaims.Client)?.Value,
            Team = teams.Of(user),
            Roles = [.. user.FindAll(ApplianceClaims.Role).Select(c => c.Value)],
            SourceIp = http.Connection.RemoteIpAddress?.ToString(),
            Method = http.Request.Method,
            Endpoint = http.Request.Path.Value,
            Model = audit.Model,
            ModelDigest = audit.ModelDigest,
            Classification = audit.Model is { } model ? access.Classification(model) : null,
            Status = status,
            ErrorCode = audit.ErrorCode,
            FinishReason = audit.Accepted ? audit.FinishReason : null,
            PromptTokens = audit.PromptTokens,
            CompletionTokens = audit.Accepted ? audit.CompletionTokens : null,
            QueueMs = audit.QueueMs,
            TimeToFirstTokenMs = audit.FirstTokenAt is { } first ? time.GetElapsedTime(audit.StartedAt, first).TotalMilliseconds : null,
            DurationMs = time.GetElapsedTime(audit.StartedAt, now).TotalMilliseconds,
            Detail = detail,
            Content = content,
        };
    }

    /// <summary>Prompt and completion, sealed with the key of the model (or of its classification label).</summary>
    private string Seal(RequestAudit audit)
    {
        var scope = options.Value.ContentKeyScope == "classification" ? access.Classification(audit.Model!) : audit.Model!;
        var content = new System.Text.Json.Nodes.JsonObject
        {
            ["prompt"] = System.Text.Json.Nodes.JsonNode.Parse(audit.Prompt!),
            ["completion"] = new System.Text.Json.Nodes.JsonObject([.. audit.Completion.OrderBy(c => c.Key)
                .Select(c => KeyValuePair.Create(c.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), (System.Text.Json.Nodes.JsonNode?)c.Value))]),
        };
        return vault.Seal(scope, content.ToJsonString());
    }

    /// <summary>For reads of the audit log: what was asked for.</summary>
    private static string? Query(HttpContext http) =>
        http.Request.Path.StartsWithSegments("/audit") && http.Request.QueryString.HasValue ? http.Request.QueryString.Value : null;

    [LoggerMessage(EventId = 4020, Level = LogLevel.Error, Message = "The prompt and completion of request {RequestId} on model {Model} could not be sealed; the record is kept without them")]
    private static partial void LogContentNotSealed(ILogger logger, Exception exception, string requestId, string model);
}
