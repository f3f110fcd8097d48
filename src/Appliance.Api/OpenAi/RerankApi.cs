using System.Text.Json;
using Appliance.Api.Audit;
using Appliance.Api.Models;
using Appliance.Engine.Embeddings;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Appliance.Api.OpenAi;

/// <summary>
/// POST /v1/rerank (also /rerank and /v2/rerank, where Jina's, vLLM's and Cohere's clients call it): documents ordered
/// by relevance to a query. A cross-encoder reads the query and each document together; an embedding model scores each
/// document by the cosine of its vector and the query's (faster, less exact). Charged, audited and rate limited as
/// embeddings are: the tokens the model ran.
/// </summary>
internal static class RerankApi
{
    // A result without return_documents has no "document" at all, as Cohere's.
    private static readonly JsonSerializerOptions WithoutNulls = new() { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    public static async Task HandleAsync(HttpContext http, IModelCatalog catalog, IModelAccess access, IAccessRecorder recorder, IContentRecording content, Guardrails.GuardrailSet guardrails, IOptions<ApiLimits> options)
    {
        var limits = options.Value;
        using var fields = await JsonFields.ReadAsync(http.Request, limits.MaxBodyBytes, http.RequestAborted);
        var cohereV2 = http.Request.Path.StartsWithSegments("/v2");
        var request = fields.Parse(f => RerankRequest.Read(f, cohereV2));
        var entry = ModelResolution.ResolveReranker(catalog, access, http, request.Model);
        var guard = guardrails.For(http, entry.Id);
        request = request with
        {
            Query = guard.Screen(request.Query, "query"),
            Documents = [.. request.Documents.Select((text, i) => guard.Screen(text, $"documents[{i}]"))],
        };
        CheckQueryLength(entry, request.Query);
        if (content.Records(entry.Id))
        {
            RequestAudit.Of(http).RecordContent(JsonSerializer.Serialize(new { query = request.Query, documents = request.Documents }));
        }

        using var quota = await ModelResolution.AcceptAsync(recorder, http);
        using var deadline = new RequestDeadline(http, limits);
        var scored = await EncoderWork.RunAsync(http, deadline, request.Model, (ran, cancellation) => ReplacedOnce.RunAsync(
            entry,
            () => ModelResolution.ResolveReranker(catalog, access, http, request.Model),
            current => ScoreAsync(current, request, cancellation, ran),
            current => (object?)current.Reranker?.Reranker ?? current.Embedder?.Embedder));
        if (scored is null)
        {
            return;
        }

        var audit = RequestAudit.Of(http);
        (audit.PromptTokens, audit.CompletionTokens, audit.FinishReason) = (scored.PromptTokens, 0, "stop");
        // Highest first; equal scores keep the documents' order.
        var results = scored.Scores.Select((score, index) => (score, index))
            .OrderByDescending(r => r.score).ThenBy(r => r.index)
            .Take(request.TopN)
            .Select(r => new
            {
                index = r.index,
                relevance_score = r.score,
                document = request.ReturnDocuments ? new { text = request.Documents[r.index] } : null,
            });
        await Results.Json(new
        {
            id = "rerank-" + Guid.NewGuid().ToString("N"),
            model = request.Model,
            results,
            usage = new { prompt_tokens = scored.PromptTokens, total_tokens = scored.PromptTokens },
            meta = new { api_version = new { version = cohereV2 ? "2" : "1" }, tokens = new { input_tokens = scored.PromptTokens, output_tokens = 0 } },
        }, WithoutNulls).ExecuteAsync(http);
    }

    /// <summary>A query the model cannot hold beside any document is a 400 before anything is charged.</summary>
    private static void CheckQueryLength(ModelEntry entry, string query)
    {
        var (tokens, room) = entry.Reranker is { } reranker
            ? (reranker.Reranker.QueryTokens(query) + 2, reranker.Reranker.MaxTokens) // and one document token with its [SEP]
            : (entry.Embedder!.Embedder.CountTokens(query), entry.Embedder.Embedder.MaxTokens);
        if (tokens > room)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid(
                $"The query has {tokens} tokens; this model's maximum input length is {room} tokens, documents included.", "query", "context_length_exceeded"));
        }
    }

    private static async Task<RerankBatch> ScoreAsync(ModelEntry entry, RerankRequest request, CancellationToken cancellation, Action<int> ran)
    {
        if (entry.Reranker is { } reranker)
        {
            return await reranker.Reranker.ScoreAsync(request.Query, request.Documents, request.MaxTokensPerDocument, cancellation, ran);
        }

        // An embedding model: the cosine of unit vectors is their dot product. Each document is cut to the model's
        // length (and max_tokens_per_doc, with its two special tokens), as a cross-encoder's are.
        var embedder = entry.Embedder!.Embedder;
        var cut = (int)Math.Min((long)request.MaxTokensPerDocument + 2, embedder.MaxTokens);
        var query = await embedder.EmbedAsync([request.Query], cancellation, ran);
        var documents = await embedder.EmbedAsync(request.Documents, cancellation, ran, cut);
        var scores = documents.Vectors.Select(vector => Dot(query.Vectors[0], vector)).ToList();
        return new RerankBatch(scores, query.PromptTokens + documents.PromptTokens);
    }

    private static double Dot(float[] a, float[] b)
    {
        var sum = 0.0;
        for (var i = 0; i < a.Length; i++)
        {
            sum += a[i] * (double)b[i];
        }

        return sum;
    }
}
