using System.Text.Json;
using Appliance.Identity.ApiKeys;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Appliance.Api.Admin;

/// <summary>
/// /admin/api-keys: administrators issue API keys to Keycloak identities for tools that cannot do OpenID Connect,
/// list them and revoke them. The key text is shown once, at issue; only its hash is kept. Each change is recorded in
/// the audit log before it is made (refused with 503 when that fails). Errors are RFC 7807.
/// </summary>
public static partial class ApiKeysApi
{
    private const int MaxText = 200;

    public static RouteGroupBuilder MapApiKeysApi(this RouteGroupBuilder admin)
    {
        var keys = admin.MapGroup("/api-keys");
        keys.MapPost("/", Issue);
        keys.MapGet("/", List);
        keys.MapDelete("/{id}", Revoke);
        keys.MapDelete("/{id}/owner-id", Unpin);
        return admin;
    }

    // The store is resolved only when keys are enabled: resolving it opens (and may create) the key table.
    private static async Task<IResult> Issue(HttpContext http, ApiKeyIssuing issuing, TimeProvider time, ILoggerFactory logs, Audit.IAccessRecorder recorder)
    {
        if (!issuing.Enabled)
        {
            return Disabled();
        }

        JsonElement body;
        try
        {
            body = await JsonSerializer.DeserializeAsync<JsonElement>(http.Request.Body, cancellationToken: http.RequestAborted);
        }
        catch (JsonException exception)
        {
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid JSON", detail: exception.Message);
        }

        if (OpenAi.JsonFields.Unreadable(body, "body") is { } unreadable)
        {
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid JSON", detail: unreadable);
        }

        var errors = new Dictionary<string, string[]>();
        var owner = Text(body, "owner", errors);
        var name = Text(body, "name", errors);
        var roles = Strings(body, "roles", errors, required: true);
        var groups = Strings(body, "groups", errors, required: false);
        // A field given in another type, or under another name, is refused: taken as absent it would give the key the
        // default clearance or lifetime the issuer did not ask for.
        if (body.ValueKind == JsonValueKind.Object && body.EnumerateObject().Select(p => p.Name).FirstOrDefault(n => !IssueFields.Contains(n, StringComparer.Ordinal)) is { } unknown)
        {
            errors[unknown] = [$"is not a field of an API key request ({string.Join(", ", IssueFields)})"];
        }

        var clearance = Optional(body, "clearance", JsonValueKind.String, "must be a string, one of the classification levels", errors)?.GetString();
        var lifetime = Optional(body, "expiresInDays", JsonValueKind.Number, "must be a whole number of days", errors);
        var days = issuing.DefaultLifetimeDays;
        if (lifetime is { } given && !given.TryGetInt32(out days))
        {
            errors["expiresInDays"] = ["must be a whole number of days"];
        }
        if (roles.FirstOrDefault(r => issuing.ForbiddenRoles.Contains(r, StringComparer.Ordinal)) is { } forbidden)
        {
            errors["roles"] = [$"'{forbidden}' cannot be given to an API key: administration and audit need a Keycloak sign-in."];
        }

        else if (roles.FirstOrDefault(r => r != issuing.UserRole && !http.User.IsInRole(r)) is { } notHeld)
        {
            errors["roles"] = [$"'{notHeld}' is not one of your roles; a key can carry at most what its issuer holds."];
        }

        var issuerGroups = http.User.FindAll(issuing.GroupsClaim).Select(c => c.Value).ToHashSet(StringComparer.Ordinal);
        if (groups.FirstOrDefault(g => !issuerGroups.Contains(g)) is { } notMember)
        {
            errors["groups"] = [$"you are not in '{notMember}'; a key can carry at most what its issuer holds."];
        }

        var issuer = http.User.Identity?.Name ?? string.Empty;
        if (owner is not null && owner != issuer && !issuing.ServiceOwners.Contains(owner, StringComparer.Ordinal))
        {
            errors["owner"] = [$"must be you ('{issuer}') or a service account listed in Identity:ApiKeys:ServiceOwners: a key acts as its owner in the audit log, so it cannot be issued in a colleague's name."];
        }

        if (clearance is not null && !issuing.ClearanceLevels.Contains(clearance, StringComparer.OrdinalIgnoreCase))
        {
            errors["clearance"] = [$"must be one of {string.Join(", ", issuing.ClearanceLevels)}"];
        }
        else if (issuing.Clearance.Rank(clearance ?? issuing.Clearance.DefaultClearance) > issuing.Clearance.CallerRank(http.User))
        {
            errors["clearance"] = [$"'{clearance ?? issuing.Clearance.DefaultClearance}' is above your own clearance; a key can carry at most what its issuer holds."];
        }

        if (!errors.ContainsKey("expiresInDays") && (days < 1 || days > issuing.MaxLifetimeDays))
        {
            errors["expiresInDays"] = [$"must be between 1 and {issuing.MaxLifetimeDays}"];
        }

        if (errors.Count > 0)
        {
            return Results.ValidationProblem(errors, title: "The API key request is not valid.");
        }

        Audit.RequestAudit.Of(http).Reason = $"issue API key '{name}' to {owner} with roles {string.Join(",", roles)}"
            + (groups.Length > 0 ? $", groups {string.Join(",", groups)}" : string.Empty)
            + $", clearance {clearance ?? issuing.Clearance.DefaultClearance}, for {days} days";
        if (!await recorder.TryAcceptAsync(http))
        {
            return Audit.AuditUnavailable.Problem("this administrative action");
        }

        var now = time.GetUtcNow();
        var (id, key, hash) = ApiKeySecret.Generate();
        var record = new ApiKeyRecord
        {
            Id = id, Name = name!, Owner = owner!, Roles = roles, Groups = groups, Clearance = clearance,
            CreatedAt = now, CreatedBy = http.User.Identity?.Name ?? "unknown", ExpiresAt = now.AddDays(days), SecretHash = hash,
        };
        var store = http.RequestServices.GetRequiredService<ApiKeyStore>();
        try
        {
            store.Add(record);
        }
        catch (System.Data.Common.DbException exception)
        {
            return KeyTableUnavailable(store, exception);
        }

        LogIssued(logs.CreateLogger("Appliance.Admin"), id, record.Name, record.Owner, string.Join(",", roles), record.CreatedBy, record.ExpiresAt);
        return Results.Created($"/admin/api-keys/{id}", new { key, apiKey = Describe(record, now) });
    }

    private static IResult List(HttpContext http, ApiKeyIssuing issuing, TimeProvider time)
    {
        if (!issuing.Enabled)
        {
            return Disabled();
        }

        var store = http.RequestServices.GetRequiredService<ApiKeyStore>();
        try
        {
            return Results.Json(new { data = store.All().Select(k => Describe(k, time.GetUtcNow())).ToList() });
        }
        catch (System.Data.Common.DbException exception)
        {
            return KeyTableUnavailable(store, exception);
        }
    }

    private static async Task<IResult> Revoke(string id, HttpContext http, ApiKeyIssuing issuing, TimeProvider time, ILoggerFactory logs, Audit.IAccessRecorder recorder)
    {
        if (!issuing.Enabled)
        {
            return Disabled();
        }

        Audit.RequestAudit.Of(http).Reason = $"revoke API key {id}";
        var store = http.RequestServices.GetRequiredService<ApiKeyStore>();
        try
        {
            if (store.Find(id) is not null && !await recorder.TryAcceptAsync(http))
            {
                return Audit.AuditUnavailable.Problem("this administrative action");
            }

            if (!store.Revoke(id, http.User.Identity?.Name ?? "unknown", time.GetUtcNow()))
            {
                return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "No such API key", detail: $"There is no API key '{id}'.");
            }
        }
        catch (System.Data.Common.DbException exception)
        {
            return KeyTableUnavailable(store, exception);
        }

        LogRevoked(logs.CreateLogger("Appliance.Admin"), id, http.User.Identity?.Name);
        return Results.NoContent();
    }

    /// <summary>
    /// Forgets the Keycloak account a key's owner was pinned to, for when Keycloak gave the same person a new id (a user
    /// federation re-created, users re-imported): the next owner check pins the account the name has now.
    /// </summary>
    private static async Task<IResult> Unpin(string id, HttpContext http, ApiKeyIssuing issuing, ILoggerFactory logs, Audit.IAccessRecorder recorder)
    {
        if (!issuing.Enabled)
        {
            return Disabled();
        }

        Audit.RequestAudit.Of(http).Reason = $"forget the Keycloak account API key {id} was pinned to";
        var store = http.RequestServices.GetRequiredService<ApiKeyStore>();
        try
        {
            if (store.Find(id) is not { } key)
            {
                return Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "No such API key", detail: $"There is no API key '{id}'.");
            }

            Audit.RequestAudit.Of(http).Reason = $"forget the Keycloak account {key.OwnerId ?? "(none)"} API key {id} of {key.Owner} was pinned to";
            if (!await recorder.TryAcceptAsync(http))
            {
                return Audit.AuditUnavailable.Problem("this administrative action");
            }

            store.UnpinOwner(id);
        }
        catch (System.Data.Common.DbException exception)
        {
            return KeyTableUnavailable(store, exception);
        }

        LogUnpinned(logs.CreateLogger("Appliance.Admin"), id, http.User.Identity?.Name);
        return Results.NoContent();
    }

    private static object Describe(ApiKeyRecord key, DateTimeOffset now) => new
    {
        id = key.Id, name = key.Name, owner = key.Owner, ownerId = key.OwnerId, roles = key.Roles, groups = key.Groups, clearance = key.Clearance,
        createdAt = key.CreatedAt, createdBy = key.CreatedBy, expiresAt = key.ExpiresAt, revokedAt = key.RevokedAt, revokedBy = key.RevokedBy,
        active = key.IsActive(now),
    };

    private static IResult KeyTableUnavailable(ApiKeyStore store, Exception exception) =>
        Results.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "API key table unavailable",
            detail: $"The {store.Backend} API key table could not be read or written ({exception.Message}); the change may not have been made. "
                + "List the keys (GET /admin/api-keys) once the database is back and repeat it if needed; repeating a revocation is harmless.");

    private static IResult Disabled() =>
        Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "API keys are disabled",
            detail: "Set Identity:ApiKeys:Enabled=true to let administrators issue API keys.");

    private static readonly string[] IssueFields = ["owner", "name", "roles", "groups", "clearance", "expiresInDays"];

    /// <summary>An optional field: null when absent or null, the value when of <paramref name="kind"/>, else an error.</summary>
    private static JsonElement? Optional(JsonElement body, string field, JsonValueKind kind, string rule, Dictionary<string, string[]> errors)
    {
        if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != kind)
        {
            errors[field] = [rule];
            return null;
        }

        return value;
    }

    private static string? Text(JsonElement body, string field, Dictionary<string, string[]> errors)
    {
        var value = body.ValueKind == JsonValueKind.Object && body.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        if (string.IsNullOrWhiteSpace(value) || value.Length > MaxText)
        {
            errors[field] = [$"is required: a string of 1 to {MaxText} characters"];
            return null;
        }

        return value;
    }

    private static string[] Strings(JsonElement body, string field, Dictionary<string, string[]> errors, bool required)
    {
        if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            if (required)
            {
                errors[field] = ["is required: a non-empty array of strings"];
            }

            return [];
        }

        if (value.ValueKind != JsonValueKind.Array || value.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(e.GetString()))
            || (required && value.GetArrayLength() == 0) || value.GetArrayLength() > 64)
        {
            errors[field] = ["must be an array of up to 64 non-empty strings" + (required ? ", at least one" : string.Empty)];
            return [];
        }

        return [.. value.EnumerateArray().Select(e => e.GetString()!).Distinct(StringComparer.Ordinal)];
    }

    [LoggerMessage(EventId = 3020, Level = LogLevel.Information, Message = "API key {KeyId} ({Name}) issued to {Owner} with roles {Roles} by {Admin}, expires {ExpiresAt}")]
    private static partial void LogIssued(ILogger logger, string keyId, string name, string owner, string roles, string? admin, DateTimeOffset? expiresAt);

    [LoggerMessage(EventId = 3021, Level = LogLevel.Information, Message = "API key {KeyId} revoked by {Admin}")]
    private static partial void LogRevoked(ILogger logger, string keyId, string? admin);

    [LoggerMessage(EventId = 3022, Level = LogLevel.Information, Message = "API key {KeyId}: the Keycloak account it was pinned to forgotten by {Admin}; the next owner check pins the owner's current account")]
    private static partial void LogUnpinned(ILogger logger, string keyId, string? admin);
}
