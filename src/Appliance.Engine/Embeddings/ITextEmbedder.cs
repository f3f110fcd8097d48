namespace Appliance.Engine.Embeddings;

/// <summary>Vectors for a batch of texts, and how many tokens they took.</summary>
public sealed record EmbeddingBatch(IReadOnlyList<float[]> Vectors, int PromptTokens);

/// <summary>A sentence-embedding model. Implementations must be safe to call from several threads.</summary>
public interface ITextEmbedder
{
    int Dimensions { get; }

    /// <summary>Most tokens (special tokens included) one input may have.</summary>
    int MaxTokens { get; }

    /// <summary>Tokens the text takes, special tokens included.</summary>
    int CountTokens(string text);

    /// <summary>
    /// L2-normalised vectors, one per text, in order; a cancellation stops the work between model runs, and
    /// <paramref name="ran"/> is told the tokens of each run done (what a request stopped half way still costs).
    /// Throws <see cref="EngineOverloadedException"/> when too many requests already wait for the model. A text longer
    /// than <see cref="MaxTokens"/> is refused, unless <paramref name="cutAt"/> is given: each text is then cut at its
    /// end to at most that many tokens (special tokens included; at most <see cref="MaxTokens"/>), as rerank services cut
    /// documents.
    /// </summary>
    Task<EmbeddingBatch> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellation = default, Action<int>? ran = null, int? cutAt = null);
}
