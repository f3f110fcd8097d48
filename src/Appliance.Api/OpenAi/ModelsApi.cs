using Appliance.Api.Models;
using Microsoft.AspNetCore.Http;

namespace Appliance.Api.OpenAi;

/// <summary>
/// GET /v1/models and /v1/models/{id}, with the appliance's extra metadata (context length, digest, state, sampling
/// defaults). A caller
/// sees only the models it may use.
/// </summary>
internal static class ModelsApi
{
    public static IResult List(HttpContext http, IModelCatalog catalog, IModelAccess access) =>
        Results.Json(new { @object = "list", data = catalog.Entries.Where(e => access.MayUse(http.User, e.Id, recordDenial: false, out _)).Select(Describe).ToList() });

    public static IResult Get(string id, HttpContext http, IModelCatalog catalog, IModelAccess access) => catalog.Find(id) switch
    {
        null => OpenAiError.ModelNotFound(id).ToResult(),
        var entry when !access.MayUse(http.User, entry.Id, recordDenial: true, out var denial) && Refused(http, entry.Id, denial) =>
            (access.HideForbiddenModels ? OpenAiError.ModelNotFound(id) : OpenAiError.ModelNotAllowed(id)).ToResult(),
        var entry => Results.Json(Describe(entry)),
    };

    private static bool Refused(HttpContext http, string model, string? denial)
    {
        var audit = Audit.RequestAudit.Of(http);
        (audit.Model, audit.Reason) = (model, denial);
        return true;
    }

    private static object Describe(ModelEntry entry) => new
    {
        id = entry.Id,
        @object = "model",
        created = (entry.Served?.Created ?? entry.Embedder?.Created ?? entry.Reranker?.Created)?.ToUnixTimeSeconds() ?? 0,
        owned_by = "appliance",
        aliases = entry.Aliases,
        state = entry.State.ToString().ToLowerInvariant(),
        kind = entry.KindName,
        context_length = entry.Served?.ContextLength ?? entry.Embedder?.Embedder.MaxTokens ?? entry.Reranker?.Reranker.MaxTokens,
        max_model_len = entry.Served?.ContextLength ?? entry.Embedder?.Embedder.MaxTokens ?? entry.Reranker?.Reranker.MaxTokens, // vLLM's name: its clients and benchmarks read it
        digest = entry.Digest,
        // What a request that names none of these gets (the administrator's, else the model authors', else OpenAI's).
        sampling_defaults = entry.Served?.Defaults is { } defaults
            ? new { temperature = defaults.Temperature, top_p = defaults.TopP, max_tokens = defaults.MaxTokens }
            : null,
    };
}
