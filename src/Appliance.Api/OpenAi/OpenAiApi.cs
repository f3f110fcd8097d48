using Appliance.Api.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Appliance.Api.OpenAi;

/// <summary>Maps the OpenAI-compatible API under /v1; every error there is answered in OpenAI's format.</summary>
public static partial class OpenAiApi
{
    /// <summary>Maps /v1; the group is returned so that the host can put it behind its authorisation policy.</summary>
    public static RouteGroupBuilder MapOpenAiApi(this IEndpointRouteBuilder endpoints)
    {
        var v1 = endpoints.MapGroup("/v1").AddEndpointFilter(ErrorFilter).AddEndpointFilter(DrainFilter);
        v1.MapPost("/chat/completions", ChatCompletionsApi.HandleAsync);
        v1.MapPost("/completions", CompletionsApi.HandleAsync);
        v1.MapPost("/embeddings", EmbeddingsApi.HandleAsync);
        v1.MapPost("/rerank", RerankApi.HandleAsync);
        v1.MapGet("/models", ModelsApi.List);
        // Every segment: an id such as "meta-llama/Llama-3.1-8B-Instruct" is sent unescaped by the SDKs.
        v1.MapGet("/models/{**id}", (string id, HttpContext http, IModelCatalog catalog, IModelAccess access) =>
            ModelsApi.Get(Uri.UnescapeDataString(id), http, catalog, access));
        v1.MapPost("/responses", Responses.ResponsesApi.HandleAsync);
        v1.MapPost("/responses/input_tokens", Responses.ResponsesApi.CountInputTokensAsync);
        v1.MapPost("/messages", Anthropic.MessagesApi.HandleAsync);
        v1.MapPost("/messages/count_tokens", Anthropic.MessagesApi.CountTokensAsync);
        MapTokenizer(v1);
        Batches.BatchApiRoutes.Map(v1);
        v1.Map("/{**path}", (string? path) =>
            new OpenAiError(StatusCodes.Status404NotFound, $"Unknown request URL: /v1/{path}.", "invalid_request_error", null, "unknown_url").ToResult());
        return v1;
    }

    /// <summary>
    /// The tokenizer endpoints where vLLM serves them, at the root (evaluation harnesses call them there), and rerank
    /// where vLLM's and Cohere's clients call it, answered in OpenAI's format as under /v1; the group is returned for the
    /// host's authorisation policy.
    /// </summary>
    public static RouteGroupBuilder MapTokenizerAtRoot(this IEndpointRouteBuilder endpoints)
    {
        var root = endpoints.MapGroup(string.Empty).AddEndpointFilter(ErrorFilter).AddEndpointFilter(DrainFilter);
        MapTokenizer(root);
        // Rerank where vLLM (/rerank) and Cohere's v2 clients (/v2/rerank) call it, answered as under /v1.
        root.MapPost("/rerank", RerankApi.HandleAsync);
        root.MapPost("/v2/rerank", RerankApi.HandleAsync);
        // A wrong method answers as /v1 answers everything: in OpenAI's format (routing's own 405 has no body).
        string[] others = ["GET", "PUT", "DELETE", "PATCH"];
        root.MapMethods("/tokenize", others, (HttpContext http) => MethodNotAllowed(http, "POST"));
        root.MapMethods("/detokenize", others, (HttpContext http) => MethodNotAllowed(http, "POST"));
        root.MapMethods("/tokenizer_info", ["POST", "PUT", "DELETE", "PATCH"], (HttpContext http) => MethodNotAllowed(http, "GET"));
        root.MapMethods("/rerank", others, (HttpContext http) => MethodNotAllowed(http, "POST"));
        root.MapMethods("/v2/rerank", others, (HttpContext http) => MethodNotAllowed(http, "POST"));
        return root;
    }

    /// <summary>The root paths that answer as the OpenAI-compatible API does (errors in its format).</summary>
    public static bool AnswersAsOpenAi(PathString path) =>
        path.StartsWithSegments("/v1") || TokenizerPaths.Any(p => path.Equals(p, StringComparison.OrdinalIgnoreCase));

    private static readonly string[] TokenizerPaths = ["/tokenize", "/detokenize", "/tokenizer_info", "/rerank", "/v2/rerank"];

    private static IResult MethodNotAllowed(HttpContext http, string allowed)
    {
        http.Response.Headers.Allow = allowed;
        return new OpenAiError(StatusCodes.Status405MethodNotAllowed, $"{http.Request.Method} is not allowed on {http.Request.Path}; use {allowed}.", "invalid_request_error", null, "method_not_allowed").ToResult();
    }

    private static void MapTokenizer(RouteGroupBuilder group)
    {
        group.MapPost("/tokenize", TokenizerApi.TokenizeAsync);
        group.MapPost("/detokenize", TokenizerApi.DetokenizeAsync);
        group.MapGet("/tokenizer_info", (HttpContext http, IModelCatalog catalog, IModelAccess access, string? model) => TokenizerApi.Info(http, catalog, access, model));
    }

    private static async ValueTask<object?> ErrorFilter(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        try
        {
            return await next(context);
        }
        catch (OpenAiRequestException exception)
        {
            return Answer(http, exception.Error, exception.Error.Status is 429 or 503 ? exception.RetryAfterSeconds ?? 1 : null);
        }
        catch (BadHttpRequestException exception)
        {
            return Answer(http, exception.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? OpenAiError.TooLarge(http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize ?? 0)
                : OpenAiError.Invalid(exception.Message, null, "bad_request"), null);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return Results.Empty;
        }
        catch (Exception exception) when (!http.Response.HasStarted)
        {
            LogUnhandled(http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Appliance.Api"), exception, http.Request.Path);
            return new OpenAiError(StatusCodes.Status500InternalServerError, "The appliance failed to process the request.", "server_error", null, "internal_error").ToResult();
        }
    }

    /// <summary>A draining node turns new requests away (503 with Retry-After) and counts the ones it runs.</summary>
    private static async ValueTask<object?> DrainFilter(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var gate = context.HttpContext.RequestServices.GetService<Admin.DrainGate>();
        if (gate is null)
        {
            return await next(context);
        }

        if (!gate.TryEnter())
        {
            Audit.RequestAudit.Of(context.HttpContext).Reason = "node draining";
            return OpenAiError.Unavailable("This node is draining for maintenance; retry, and the load balancer sends you to another node.", "draining").ToResult(5);
        }

        try
        {
            return await next(context);
        }
        finally
        {
            gate.Exit();
        }
    }

    private static IResult Answer(HttpContext http, OpenAiError error, int? retryAfter) =>
        http.Response.HasStarted ? Results.Empty : error.ToResult(retryAfter);

    [LoggerMessage(EventId = 2000, Level = LogLevel.Error, Message = "Unhandled error on {Path}")]
    private static partial void LogUnhandled(ILogger logger, Exception exception, string path);
}
