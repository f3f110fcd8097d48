using Appliance.Engine;
using Appliance.Engine.Embeddings;
using Appliance.Prompting;

namespace Appliance.Api.Models;

/// <summary>Where a declared model is in its life.</summary>
public enum ModelLoadState
{
    Loading,
    Ready,
    Failed,

    /// <summary>Declared but unloaded by an administrator (or being unloaded: no new requests).</summary>
    Unloaded,
}

/// <summary>Sampling defaults a model's configuration gives when a request leaves them out.</summary>
/// <param name="MaxTokens">For a request naming none; null: what the context leaves, up to Limits:MaxTokens (OpenAI's rule).</param>
public sealed record ModelDefaults(float Temperature = 1f, float TopP = 1f, int? MaxTokens = null, int TopK = 0, float RepetitionPenalty = 1f);

/// <summary>A loaded model, ready to serve.</summary>
public sealed record ServedModel(
    string Id,
    IReadOnlyList<string> Aliases,
    DateTimeOffset Created,
    string Digest,
    int ContextLength,
    ModelDefaults Defaults,
    IChatTemplate ChatTemplate,
    IEngineClient Engine,
    ToolCallFormat? ToolCalls = null,
    Prompting.Reasoning.ThinkingTags? Thinking = null)
{
    /// <summary>
    /// How the model writes tool calls: configured or recognised from its template where the template renders tools
    /// (or is DeepSeek V3's or V3.1's); Hermes where the appliance describes the tools itself (ToolPrompt tells the model that
    /// convention).
    /// </summary>
    public ToolCallFormat ToolCallFormat => ToolPrompt.UsesModelFormat(ChatTemplate)
        ? ToolCalls ?? ToolCallFormat.FromTemplate(ChatTemplate.Source)
        : ToolCallFormat.Hermes;
}

/// <summary>A loaded sentence-embedding model.</summary>
public sealed record ServedEmbedder(string Id, DateTimeOffset Created, string Digest, ITextEmbedder Embedder);

/// <summary>A loaded cross-encoder, scoring documents against a query (/v1/rerank).</summary>
public sealed record ServedReranker(string Id, DateTimeOffset Created, string Digest, ITextReranker Reranker);

/// <summary>
/// A declared model and its state; once it is ready, <see cref="Served"/> (a generative model),
/// <see cref="Embedder"/> (an embedding model) or <see cref="Reranker"/> (a cross-encoder) is set.
/// </summary>
public sealed record ModelEntry(
    string Id,
    IReadOnlyList<string> Aliases,
    ModelLoadState State,
    string? Error,
    ServedModel? Served,
    ServedEmbedder? Embedder = null,
    ServedReranker? Reranker = null)
{
    /// <summary>
    /// What it serves when nothing is loaded to say so (loading, failed, unloaded): "embedding" or "rerank" for an
    /// encoder folder; null for a generative model.
    /// </summary>
    public string? Kind { get; init; }

    /// <summary>"chat", "embedding" or "rerank", as /v1/models says it, whatever the state.</summary>
    public string KindName => Embedder is not null ? "embedding" : Reranker is not null ? "rerank" : Served is not null ? "chat" : Kind ?? "chat";

    /// <summary>The packaged embedding model: part of the installation, not declared, so no administrator loads or unloads it.</summary>
    public bool BuiltIn { get; init; }

    /// <summary>The digest of the files that serve it, whichever kind it is; null until it is ready.</summary>
    public string? Digest => Served?.Digest ?? Embedder?.Digest ?? Reranker?.Digest;
}

/// <summary>The models this node serves, by id or alias.</summary>
public interface IModelCatalog
{
    IReadOnlyList<ModelEntry> Entries { get; }

    /// <summary>The entry whose id or alias is <paramref name="name"/> (ordinal), or null.</summary>
    ModelEntry? Find(string name);

    bool AllReady => Entries.All(e => e.State is ModelLoadState.Ready or ModelLoadState.Unloaded);
}
