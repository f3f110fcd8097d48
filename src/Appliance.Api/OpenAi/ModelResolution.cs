using Appliance.Api.Audit;
using Appliance.Api.Models;
using Appliance.Api.Quotas;
using Microsoft.AspNetCore.Http;

namespace Appliance.Api.OpenAi;

/// <summary>
/// Finds the served model a request names if the caller may use it, or answers 403 / 404 / 503 as OpenAI clients expect.
/// </summary>
internal static class ModelResolution
{
    public static ServedModel Resolve(IModelCatalog catalog, IModelAccess access, HttpContext http, string name) =>
        Ready(catalog, access, http, name) is var entry && entry.Served is { } served ? served : throw WrongKind(entry, name);

    public static ServedEmbedder ResolveEmbedder(IModelCatalog catalog, IModelAccess access, HttpContext http, string name) =>
        Ready(catalog, access, http, name) is var entry && entry.Embedder is { } embedder ? embedder : throw WrongKind(entry, name);

    /// <summary>A cross-encoder, or an embedding model (which reranks by the cosine of the query's and each document's vectors).</summary>
    public static ModelEntry ResolveReranker(IModelCatalog catalog, IModelAccess access, HttpContext http, string name) =>
        Ready(catalog, access, http, name) is var entry && (entry.Reranker is not null || entry.Embedder is not null) ? entry : throw WrongKind(entry, name);

    /// <summary>Says which endpoint serves the model named, where it is not this one.</summary>
    private static OpenAiRequestException WrongKind(ModelEntry entry, string name) => new(OpenAiError.Invalid(
        entry.Embedder is not null ? $"The model '{name}' is an embedding model; use /v1/embeddings (or /v1/rerank)."
        : entry.Reranker is not null ? $"The model '{name}' is a reranking model (a cross-encoder); use /v1/rerank."
        : $"The model '{name}' is a generative model; use /v1/chat/completions.",
        "model", "model_not_supported"));

    private static ModelEntry Ready(IModelCatalog catalog, IModelAccess access, HttpContext http, string name)
    {
        var entry = catalog.Find(name) ?? throw new OpenAiRequestException(OpenAiError.ModelNotFound(name));
        var audit = RequestAudit.Of(http);
        audit.Model = entry.Id;
        audit.ModelDigest = entry.Digest;
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

    /// <summary>
    /// max_tokens as asked, or what the context leaves, capped by the model's default when the administrator set one,
    /// else by <paramref name="ceiling"/> (Limits:MaxTokens): as in OpenAI's API, an answer is not cut short because the
    /// client named no limit (most SDKs and chat UIs name none). Too long is a 400, unless the client asked for more
    /// than Limits:MaxTokens (<paramref name="requestedIsCeiling"/>): that was capped, and is met by what the context leaves.
    /// </summary>
    public static int MaxTokens(ServedModel model, int? requested, int promptTokens, int ceiling, bool requestedIsCeiling = false, string input = "messages")
    {
        var room = model.ContextLength - promptTokens;
        if (requested is { } asked)
        {
            return asked <= room ? asked
                : requestedIsCeiling && room >= 1 ? room
                : throw new OpenAiRequestException(OpenAiError.ContextLengthExceeded(model.ContextLength, promptTokens, asked, input));
        }

        return room >= 1 ? Math.Min(model.Defaults.MaxTokens ?? ceiling, room) : throw new OpenAiRequestException(OpenAiError.ContextLengthExceeded(model.ContextLength, promptTokens, 1, input));
    }

    /// <summary>
    /// Takes the caller's quotas (429 naming the quota and its reset when one is used up), then records the request as
    /// accepted, or refuses it with 503 when the audit log cannot (fail closed). Disposing the lease charges the tokens
    /// the request's audit state ends with.
    /// </summary>
    public static async Task<IDisposable> AcceptAsync(IAccessRecorder recorder, HttpContext http)
    {
        var audit = RequestAudit.Of(http);
        var lease = EnterQuotas(http, audit);
        try
        {
            await RecordAcceptedAsync(recorder, http);
        }
        catch
        {
            Refund(lease, http);
            throw;
        }

        return new QuotaCharge(lease, audit);
    }

    /// <summary>
    /// As <see cref="AcceptAsync(IAccessRecorder, HttpContext)"/> for a request the engine generates: the choices are
    /// submitted between the quotas and the accepted record, so that a request the engine refuses (queue full, a
    /// prompt it cannot hold) is audited as refused and neither charged nor counted against the caller's quotas. Its
    /// answer still starts only once the accepted record is stored.
    /// </summary>
    public static async Task<(IDisposable Quota, ChoiceStreams Streams)> AcceptAsync(IAccessRecorder recorder, HttpContext http, Func<ChoiceStreams> submit)
    {
        var audit = RequestAudit.Of(http);
        var lease = EnterQuotas(http, audit);
        ChoiceStreams streams;
        try
        {
            streams = submit();
        }
        catch
        {
            Refund(lease, http);
            throw;
        }

        try
        {
            await RecordAcceptedAsync(recorder, http);
        }
        catch
        {
            try
            {
                await streams.DisposeAsync(); // cancels the generation: nothing of it is sent
            }
            finally
            {
                Refund(lease, http);
            }

            throw;
        }

        return (new QuotaCharge(lease, audit), streams);
    }

    private static IQuotaLease? EnterQuotas(HttpContext http, RequestAudit audit)
    {
        if (http.RequestServices.GetService(typeof(IQuotaGate)) is not IQuotaGate gate)
        {
            return null;
        }

        var lease = gate.TryEnter(http.User, out var refusal);
        WriteRateLimits(http, gate); // this request counted, or refused
        return lease ?? throw QuotaExceeded(audit, refusal!, http);
    }

    /// <summary>Ends the lease of a request admitted and then not run; its answer's rate-limit headers no longer count it.</summary>
    private static void Refund(IQuotaLease? lease, HttpContext http)
    {
        if (lease is null)
        {
            return;
        }

        lease.Refund();
        if (!http.Response.HasStarted && http.RequestServices.GetService(typeof(IQuotaGate)) is IQuotaGate gate)
        {
            WriteRateLimits(http, gate);
        }
    }

    private static void WriteRateLimits(HttpContext http, IQuotaGate gate)
    {
        var time = http.RequestServices.GetService(typeof(TimeProvider)) as TimeProvider ?? TimeProvider.System;
        RateLimitHeaders.Write(http, gate.Headroom(http.User), time.GetUtcNow());
    }

    /// <summary>The request's accepted record, stored before it acts (a 503 audit_unavailable when it cannot be).</summary>
    internal static async Task RecordAcceptedAsync(IAccessRecorder recorder, HttpContext http)
    {
        if (!await recorder.TryAcceptAsync(http))
        {
            throw new OpenAiRequestException(OpenAiError.Unavailable("The audit log cannot record the request, so it was not processed. Please retry later.", "audit_unavailable"));
        }
    }

    private static OpenAiRequestException QuotaExceeded(RequestAudit audit, QuotaRefusal refusal, HttpContext http)
    {
        audit.Reason = $"quota {refusal.Quota} of {refusal.Scope} '{refusal.Who}' used up ({refusal.Used} of {refusal.Limit})";
        var now = (http.RequestServices.GetService(typeof(TimeProvider)) as TimeProvider ?? TimeProvider.System).GetUtcNow();
        var retryAfter = (int)Math.Clamp(Math.Ceiling((refusal.ResetsAt - now).TotalSeconds), 1, 86_400);
        http.Response.Headers["X-Quota-Name"] = refusal.Quota;
        http.Response.Headers["X-Quota-Reset"] = refusal.ResetsAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        if (retryAfter > 60)
        {
            // The SDKs pass over a Retry-After above a minute and retry on their own schedule, each try refused and
            // audited again: a quota that resets tomorrow is no invitation to retry.
            http.Response.Headers["x-should-retry"] = "false";
        }

        return new OpenAiRequestException(OpenAiError.QuotaExceeded(refusal.Message), retryAfter);
    }

    /// <summary>Charges the request's prompt and completion tokens to the quotas when the response is done.</summary>
    private sealed class QuotaCharge(IQuotaLease? lease, RequestAudit audit) : IDisposable
    {
        public void Dispose()
        {
            if (lease is not null)
            {
                lease.Charge((audit.PromptTokens ?? 0) + (audit.CompletionTokens ?? 0));
                lease.Dispose();
            }
        }
    }

    /// <summary>system_fingerprint: ties every response to the exact model files that produced it.</summary>
    public static string Fingerprint(ServedModel model) => "fp_" + model.Digest.Replace("sha256:", string.Empty, StringComparison.Ordinal)[..12];
}
