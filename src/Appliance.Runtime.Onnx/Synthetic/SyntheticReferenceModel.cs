namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>The reference forward pass for a synthetic spec, whichever architecture it is written as.</summary>
public sealed class SyntheticReferenceModel
{
    private readonly SyntheticWeights? _gpt2;
    private readonly LlamaWeights? _llama;

    private SyntheticReferenceModel(SyntheticWeights? gpt2, LlamaWeights? llama)
    {
        _gpt2 = gpt2;
        _llama = llama;
    }

    public static SyntheticReferenceModel Create(SyntheticModelSpec spec) => spec.Architecture == SyntheticArchitecture.Llama
        ? new SyntheticReferenceModel(null, LlamaWeights.Create(spec))
        : new SyntheticReferenceModel(SyntheticWeights.Create(spec), null);

    /// <summary>Greedy generation from a fresh cache: the tokens the engine must produce with temperature 0.</summary>
    public List<int> GenerateGreedy(IReadOnlyList<int> prompt, int maxNewTokens) => _llama is not null
        ? LlamaReference.GenerateGreedy(_llama, prompt, maxNewTokens)
        : SyntheticReference.GenerateGreedy(_gpt2!, prompt, maxNewTokens);
}
