using Microsoft.AspNetCore.Http;

namespace Appliance.Api.OpenAi;

/// <summary>An error in OpenAI's format: HTTP status plus {"error":{"message","type","param","code"}}.</summary>
public sealed record OpenAiError(int Status, string Message, string Type, string? Param, string? Code)
{
    public static OpenAiError Invalid(string message, string? param, string code = "invalid_value") =>
        new(StatusCodes.Status400BadRequest, message, "invalid_request_error", param, code);

    public static OpenAiError Unsupported(string param, string what) =>
        new(StatusCodes.Status400BadRequest, $"'{param}': {what} is not supported by this appliance yet.", "invalid_request_error", param, "unsupported_parameter");

    /// <summary>401: no detail on why the token was refused; the reason is logged, an attacker learns nothing.</summary>
    public static OpenAiError Unauthenticated() =>
        new(StatusCodes.Status401Unauthorized, "Authentication required: send a valid bearer token (Authorization: Bearer <token>).", "invalid_request_error", null, "invalid_api_key");

    public static OpenAiError Forbidden() =>
        new(StatusCodes.Status403Forbidden, "You are not allowed to use this endpoint.", "permission_error", null, "permission_denied");

    /// <summary>The same answer for every refused model, whatever the reason: the reason is recorded, not told.</summary>
    public static OpenAiError ModelNotAllowed(string model) =>
        new(StatusCodes.Status403Forbidden, $"You are not allowed to use the model '{model}'.", "permission_error", "model", "model_not_allowed");

    public static OpenAiError ModelNotFound(string model) =>
        new(StatusCodes.Status404NotFound, $"The model '{model}' does not exist or you do not have access to it.", "invalid_request_error", "model", "model_not_found");

    /// <param name="input">The request's field the prompt came from: messages, prompt (legacy completions) or input (Responses).</param>
    public static OpenAiError ContextLengthExceeded(int context, int prompt, int maxTokens, string input = "messages") =>
        new(StatusCodes.Status400BadRequest,
            $"This model's maximum context length is {context} tokens. However, you requested {prompt + maxTokens} tokens ({prompt} in the {input}, {maxTokens} in the completion). Please reduce the length of the {input} or completion.",
            "invalid_request_error", input, "context_length_exceeded");

    public static OpenAiError Overloaded(string model, string? reason = null) =>
        new(StatusCodes.Status429TooManyRequests, reason ?? $"The model '{model}' has too many requests waiting. Please retry after a short wait.", "rate_limit_error", null, "rate_limit_exceeded");

    /// <summary>A user or team quota is used up; the message names it and when it resets.</summary>
    public static OpenAiError QuotaExceeded(string message) =>
        new(StatusCodes.Status429TooManyRequests, message, "rate_limit_error", null, "quota_exceeded");

    public static OpenAiError Unavailable(string message, string code) =>
        new(StatusCodes.Status503ServiceUnavailable, message, "server_error", null, code);

    public static OpenAiError TooLarge(long limit) =>
        new(StatusCodes.Status413PayloadTooLarge, $"The request body exceeds the limit of {limit} bytes.", "invalid_request_error", null, "request_too_large");

    /// <summary>
    /// Codes of server errors that the same request meets again (its own output or template cannot be read). The
    /// OpenAI and Anthropic SDKs retry every 5xx twice unless told not to, and each retry is a whole generation more,
    /// charged to the caller's quota and audited.
    /// </summary>
    private static readonly HashSet<string> RepeatedOnRetry = new(StringComparer.Ordinal) { "request_failed", "chat_template_error" };

    /// <summary>True when retrying would meet the same error: answered with x-should-retry: false, which the SDKs honour.</summary>
    public bool RepeatsOnRetry => Code is { } code && RepeatedOnRetry.Contains(code);

    public IResult ToResult(int? retryAfterSeconds = null) => new OpenAiErrorResult(this, retryAfterSeconds);

    public Task WriteAsync(HttpContext context, int? retryAfterSeconds = null) => ToResult(retryAfterSeconds).ExecuteAsync(context);

    private sealed class OpenAiErrorResult(OpenAiError error, int? retryAfterSeconds) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            if (retryAfterSeconds is { } seconds)
            {
                httpContext.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            if (error.RepeatsOnRetry)
            {
                httpContext.Response.Headers["x-should-retry"] = "false";
            }

            Audit.RequestAudit.Of(httpContext).ErrorCode ??= error.Code ?? error.Type;
            if (Anthropic.AnthropicErrors.Owns(httpContext.Request.Path))
            {
                return Anthropic.AnthropicErrors.Write(httpContext, error.Status, error.Message);
            }

            var body = new { error = new { message = error.Message, type = error.Type, param = error.Param, code = error.Code } };
            return Results.Json(body, statusCode: error.Status).ExecuteAsync(httpContext);
        }
    }
}

/// <summary>Thrown while reading a request to answer with an OpenAI error.</summary>
public sealed class OpenAiRequestException(OpenAiError error, int? retryAfterSeconds = null) : Exception(error.Message)
{
    public OpenAiError Error { get; } = error;

    /// <summary>Retry-After for 429 and 503 answers; null lets the API use its default (1 second).</summary>
    public int? RetryAfterSeconds { get; } = retryAfterSeconds;
}
