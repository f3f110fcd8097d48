using Microsoft.AspNetCore.Http;

namespace Appliance.Api.Anthropic;

/// <summary>
/// Errors on Anthropic's Messages API in its own shape: {"type": "error", "error": {"type", "message"}}, the type
/// following the status as Anthropic's API names them. Every error raised on /v1/messages is written this way.
/// </summary>
internal static class AnthropicErrors
{
    public static bool Owns(PathString path) => path.StartsWithSegments("/v1/messages");

    public static string TypeOf(int status) => status switch
    {
        StatusCodes.Status400BadRequest or StatusCodes.Status422UnprocessableEntity => "invalid_request_error",
        StatusCodes.Status401Unauthorized => "authentication_error",
        StatusCodes.Status403Forbidden => "permission_error",
        StatusCodes.Status404NotFound => "not_found_error",
        StatusCodes.Status413PayloadTooLarge => "request_too_large",
        StatusCodes.Status429TooManyRequests => "rate_limit_error",
        StatusCodes.Status503ServiceUnavailable or 529 => "overloaded_error",
        StatusCodes.Status504GatewayTimeout => "timeout_error",
        _ => "api_error",
    };

    public static Task Write(HttpContext http, int status, string message) =>
        Results.Json(new { type = "error", error = new { type = TypeOf(status), message } }, statusCode: status).ExecuteAsync(http);
}
