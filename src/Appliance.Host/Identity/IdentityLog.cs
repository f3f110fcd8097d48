namespace Appliance.Host.Identity;

/// <summary>Identity events. Refusals carry what an auditor needs and the caller never sees.</summary>
internal static partial class IdentityLog
{
    [LoggerMessage(EventId = 3000, Level = LogLevel.Warning,
        Message = "DEVELOPMENT IDENTITY: no Identity:Authority is configured, so tokens signed by the local key {KeyPath} are accepted, on loopback only. Never use this in production; mint a token with: appliance identity token --data-folder {DataFolder} --user <name> --role appliance-user")]
    public static partial void DevelopmentIdentityInUse(ILogger logger, string keyPath, string dataFolder);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Keycloak realm {Authority}, audience {Audience}, roles of client {ClientId}")]
    public static partial void KeycloakInUse(ILogger logger, string authority, string audience, string clientId);

    [LoggerMessage(EventId = 3010, Level = LogLevel.Warning, Message = "Refused token from {RemoteAddress} on {Method} {Path}: {Reason}")]
    public static partial void TokenRefused(ILogger logger, string? remoteAddress, string method, string path, string reason);

    [LoggerMessage(EventId = 3011, Level = LogLevel.Information, Message = "No token from {RemoteAddress} on {Method} {Path}")]
    public static partial void TokenMissing(ILogger logger, string? remoteAddress, string method, string path);

    [LoggerMessage(EventId = 3012, Level = LogLevel.Warning, Message = "Forbidden: {User} (client {Client}, roles {Roles}) from {RemoteAddress} on {Method} {Path}")]
    public static partial void Forbidden(ILogger logger, string? user, string? client, string roles, string? remoteAddress, string method, string path);

    public static void Forbidden(ILogger logger, HttpContext http) =>
        Forbidden(logger, http.User.Identity?.Name, http.User.FindFirst(Appliance.Identity.ApplianceClaims.Client)?.Value,
            string.Join(",", http.User.FindAll(Appliance.Identity.ApplianceClaims.Role).Select(c => c.Value)),
            http.Connection.RemoteIpAddress?.ToString(), http.Request.Method, http.Request.Path);


    [LoggerMessage(EventId = 3014, Level = LogLevel.Warning, Message = "Refused {Refusal} from {RemoteAddress} on {Method} {Path}")]
    public static partial void ApiKeyRefused(ILogger logger, string refusal, string? remoteAddress, string method, string path);

    [LoggerMessage(EventId = 3013, Level = LogLevel.Warning, Message = "Model refused: {User} (client {Client}) may not use {Model}: {Reason}")]
    public static partial void ModelRefused(ILogger logger, string? user, string? client, string model, string reason);
}
