namespace Appliance.Engine;

/// <summary>What the engine needs to know about a loaded model.</summary>
/// <param name="Id">The model's id in the appliance.</param>
/// <param name="VocabularySize">Width of a logits row.</param>
/// <param name="ContextLength">Most tokens (prompt plus generated) one sequence may hold.</param>
/// <param name="EosTokenIds">Tokens that end generation.</param>
/// <param name="PadTokenId">Token used to fill padded positions.</param>
public sealed record ModelInfo(
    string Id,
    int VocabularySize,
    int ContextLength,
    IReadOnlySet<int> EosTokenIds,
    int PadTokenId);
