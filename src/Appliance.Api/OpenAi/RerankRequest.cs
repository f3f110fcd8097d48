using System.Text.Json;

namespace Appliance.Api.OpenAi;

/// <summary>
/// A rerank request as Cohere's, Jina's and vLLM's rerank APIs take it (what LangChain's, LlamaIndex's and Open WebUI's
/// rerankers send): a query, documents as strings or objects with "text", top_n, return_documents and Cohere's
/// max_tokens_per_doc.
/// </summary>
internal sealed record RerankRequest(string Model, string Query, IReadOnlyList<string> Documents, int TopN, bool ReturnDocuments, int MaxTokensPerDocument)
{
    /// <summary>Cohere's limit on documents per request.</summary>
    public const int MaxDocuments = 1000;

    /// <summary>Cohere's default for max_tokens_per_doc: a document is cut there, or where the model's length ends first.</summary>
    public const int DefaultMaxTokensPerDocument = 4096;

    private static readonly HashSet<string> Known = ["model", "query", "documents", "top_n", "return_documents", "max_tokens_per_doc", "user", "rank_fields", "max_chunks_per_doc"];

    /// <param name="cohereV2">Called on /v2/rerank, Cohere's v2 path: documents come back only when asked for, as there.</param>
    public static RerankRequest Read(JsonFields fields, bool cohereV2)
    {
        fields.RejectUnknown(Known);
        foreach (var unsupported in new[] { "rank_fields", "max_chunks_per_doc" })
        {
            if (fields.Has(unsupported))
            {
                throw new OpenAiRequestException(OpenAiError.Unsupported(unsupported, unsupported == "rank_fields"
                    ? "ranking on fields other than a document's text"
                    : "splitting documents into chunks (cut them before sending, or let max_tokens_per_doc cut them)"));
            }
        }

        var model = fields.RequiredString("model");
        _ = fields.OptionalString("user");
        var query = fields.RequiredString("query");
        if (string.IsNullOrWhiteSpace(query))
        {
            throw new OpenAiRequestException(OpenAiError.Invalid("'query' must not be empty.", "query"));
        }

        var documents = ReadDocuments(fields.Element("documents")
            ?? throw new OpenAiRequestException(OpenAiError.Invalid("Missing required parameter: 'documents'.", "documents", "missing_required_parameter")));
        var topN = (int)(fields.OptionalInteger("top_n", 1, int.MaxValue) ?? documents.Count);
        var perDocument = (int)(fields.OptionalInteger("max_tokens_per_doc", 1, int.MaxValue) ?? DefaultMaxTokensPerDocument);
        return new RerankRequest(model, query, documents, Math.Min(topN, documents.Count), fields.OptionalBool("return_documents") ?? !cohereV2, perDocument);
    }

    private static List<string> ReadDocuments(JsonElement documents)
    {
        if (documents.ValueKind != JsonValueKind.Array)
        {
            throw JsonFields.TypeError("documents", "an array of strings or of objects with 'text'");
        }

        var count = documents.GetArrayLength();
        if (count is 0 or > MaxDocuments)
        {
            throw new OpenAiRequestException(OpenAiError.Invalid($"'documents' must hold 1 to {MaxDocuments} items.", "documents"));
        }

        var texts = new List<string>(count);
        var index = 0;
        foreach (var document in documents.EnumerateArray())
        {
            var param = $"documents[{index++}]";
            texts.Add(document.ValueKind switch
            {
                JsonValueKind.String => document.GetString()!,
                // Other keys of a document object are the caller's metadata (Cohere ranks on "text" unless rank_fields
                // says otherwise); only the text is read.
                JsonValueKind.Object when document.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String => text.GetString()!,
                _ => throw JsonFields.TypeError(param, "a string or an object with a string 'text'"),
            });
        }

        return texts;
    }
}
