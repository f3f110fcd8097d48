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
    int PadTokenId)
{
    /// <summary>
    /// Where the model switches from one rotary cache to another by the width of a run (LongRoPE exports: short factors
    /// up to this many positions, long ones beyond), or null. A position's cache then depends on the sequence's prompt
    /// length (the whole prompt runs at once for onnxruntime-genai): the prefix cache keeps prompts on either side apart.
    /// </summary>
    public int? WidthSwitchLength { get; init; }
}
