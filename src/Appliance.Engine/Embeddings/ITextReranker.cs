namespace Appliance.Engine.Embeddings;

/// <summary>How relevant each document is to a query (in the documents' order), and how many tokens the model ran.</summary>
public sealed record RerankBatch(IReadOnlyList<double> Scores, int PromptTokens);

/// <summary>
/// A model that scores (query, document) pairs: a cross-encoder reading both texts together. Implementations must be
/// safe to call from several threads.
/// </summary>
public interface ITextReranker
{
    /// <summary>Most tokens (special tokens included) one query and document together may have.</summary>
    int MaxTokens { get; }

    /// <summary>Tokens the query takes with the special tokens of a pair, before any document.</summary>
    int QueryTokens(string query);

    /// <summary>
    /// Scores every document against the query, each cut to at most <paramref name="maxDocumentTokens"/> tokens and to
    /// what the model's length leaves beside the query. A cancellation stops the work between model runs, and
    /// <paramref name="ran"/> is told the tokens of each run done. Throws <see cref="EngineOverloadedException"/> when
    /// too many requests already wait for the model.
    /// </summary>
    Task<RerankBatch> ScoreAsync(string query, IReadOnlyList<string> documents, int maxDocumentTokens, CancellationToken cancellation = default, Action<int>? ran = null);
}
