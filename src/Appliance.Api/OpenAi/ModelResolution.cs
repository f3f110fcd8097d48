using Appliance.Api.Audit;
using Appliance.Api.Models;
using Microsoft.AspNetCore.Http;

namespace Appliance.Api.OpenAi;

/// <summary>
/// Finds the served model a request names if the caller may use it, or answers 403 / 404 / 503 as OpenAI clients expect.
/// </summary>
internal static class ModelResolution
{
    public static ServedModel Resolve(IModelCatalog catalog, IModelAccess access, HttpContext http, string name) =>
        Ready(catalog, access, http, name).Served
            ?? throw new OpenAiRequestException(OpenAiError.Invalid($"The model '{name}' is an embedding model; use /v1/embeddings.", "model", "model_not_supported"));

    public static ServedEmbedder ResolveEmbedder(IModelCatalog catalog, IModelAccess access, HttpContext http, string name) =>
        Ready(catalog, access, http, name).Embedder
            ?? throw new OpenAiRequestException(OpenAiError.Invalid($"The model '{name}' does not make embeddings.", "model", "model_not_supported"));

    private static ModelEntry Ready(IModelCatalog catalog, IModelAccess access, HttpContext http, string name)
    {
        var entry = catalog.Find(name) ?? throw new OpenAiRequestException(OpenAiError.ModelNotFound(name));
        var audit = RequestAudit.Of(http);
        audit.Model = entry.Id;
        audit.ModelDigest = entry.Served?.Digest ?? entry.Embedder?.Digest;
        if (!access.MayUse(http.User, entry.Id, recordDenial: true, out var denial))
        {
            audit.Reason = denial;
            throw new OpenAiRequestException(access.HideForbiddenModels ? OpenAiError.ModelNotFound(name) : OpenAiError.ModelNotAllowed(name));
        }

        return entry.State switch
        {
            ModelLoadState.Ready => entry,
            ModelLoadState.Unloaded => throw new OpenAiRequestException(OpenAiError.Unavailable($"The model '{name}' is unloaded on this node; an administrator can load it again.", "model_unavailable")),
            ModelLoadState.Failed => throw new OpenAiRequestException(OpenAiError.Unavailable($"The model '{name}' failed to load; see the appliance's log.", "model_unavailable")),
            _ => throw new OpenAiRequestException(OpenAiError.Unavailable($"The model '{name}' is still loading; retry shortly.", "model_loading")),
        };
    }

    /// <summary>max_tokens as asked, or what the context leaves (capped by the model's default); too long is a 400.</summary>
    public static int MaxTokens(ServedModel model, int? requested, int promptTokens)
    {
        var room = model.ContextLength - promptTokens;
        if (requested is { } asked)
        {
            return asked <= room ? asked : throw new OpenAiRequestException(OpenAiError.ContextLengthExceeded(model.ContextLength, promptTokens, asked));
        }

        return room >= 1 ? Math.Min(model.Defaults.MaxTokens, room) : throw new OpenAiRequestException(OpenAiError.ContextLengthExceeded(model.ContextLength, promptTokens, 1));
    }

    /// <summary>Records the request as accepted, or refuses it with 503 when the audit log cannot (fail closed).</summary>
    public static async Task AcceptAsync(IAccessRecorder recorder, HttpContext http)
    {
        if (!await recorder.TryAcceptAsync(http))
        {
            throw new OpenAiRequestException(OpenAiError.Unavailable("The audit log cannot record the request, so it was not processed. Please retry later.", "audit_unavailable"));
        }
    }

    /// <summary>system_fingerprint: ties every response to the exact model files that produced it.</summary>
    public static string Fingerprint(ServedModel model) => "fp_" + model.Digest.Replace("sha256:", string.Empty, StringComparison.Ordinal)[..12];
}
