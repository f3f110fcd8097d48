using Appliance.Api.Models;
using Microsoft.AspNetCore.Http;

namespace Appliance.Api.OpenAi;

/// <summary>GET /v1/models and /v1/models/{id}, with the appliance's extra metadata (context length, digest, state).</summary>
internal static class ModelsApi
{
    public static IResult List(IModelCatalog catalog) =>
        Results.Json(new { @object = "list", data = catalog.Entries.Select(Describe).ToList() });

    public static IResult Get(string id, IModelCatalog catalog) =>
        catalog.Find(id) is { } entry ? Results.Json(Describe(entry)) : OpenAiError.ModelNotFound(id).ToResult();

    private static object Describe(ModelEntry entry) => new
    {
        id = entry.Id,
        @object = "model",
        created = (entry.Served?.Created ?? entry.Embedder?.Created)?.ToUnixTimeSeconds() ?? 0,
        owned_by = "appliance",
        aliases = entry.Aliases,
        state = entry.State.ToString().ToLowerInvariant(),
        kind = entry.Embedder is not null ? "embedding" : "chat",
        context_length = entry.Served?.ContextLength ?? entry.Embedder?.Embedder.MaxTokens,
        digest = entry.Served?.Digest ?? entry.Embedder?.Digest,
    };
}
