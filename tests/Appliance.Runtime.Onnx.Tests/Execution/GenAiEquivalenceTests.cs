using Appliance.Engine.Requests;

namespace Appliance.Runtime.Onnx.Tests.Execution;

/// <summary>Greedy tokens of our engine equal onnxruntime-genai 0.18.0's on the same model folder.</summary>
public abstract class GenAiEquivalenceTests(TinyModelFixture model)
{
    private const int NewTokens = 16;
    private static readonly SamplingParams Greedy = new() { Temperature = 0, MaxTokens = NewTokens, IgnoreEos = true };

    [Fact]
    public async Task Batch_of_one_matches_onnxruntime_genai()
    {
        var prompt = EngineCorrectnessTests.Prompts[6];
        var expected = GenAiReference.Generate(model.Folder, [prompt], NewTokens)[0];

        using var engine = model.CreateEngine();
        var ours = await engine.Submit(new GenerationRequest("one", prompt, Greedy)).CollectAsync();

        Assert.True(expected.Distinct().Count() > 4, "the reference output should vary, or the comparison proves little");
        Assert.Equal(expected, ours.TokenIds);
    }

    [Fact]
    public async Task Eight_requests_of_different_lengths_match_onnxruntime_genai_batched()
    {
        var prompts = EngineCorrectnessTests.Prompts;
        var expected = GenAiReference.Generate(model.Folder, prompts, NewTokens);

        using var engine = model.CreateEngine();
        var ours = await Task.WhenAll(prompts.Select((p, i) => engine.Submit(new GenerationRequest($"r{i}", p, Greedy)).CollectAsync()));

        for (var i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(expected[i], ours[i].TokenIds);
        }
    }
}

[Collection(ConcatModelCollection.Name)]
public sealed class ConcatGenAiEquivalenceTests(ConcatModelFixture model) : GenAiEquivalenceTests(model);

[Collection(SharedBufferModelCollection.Name)]
public sealed class SharedBufferGenAiEquivalenceTests(SharedBufferModelFixture model) : GenAiEquivalenceTests(model);

[Collection(LlamaModelCollection.Name)]
public sealed class LlamaGenAiEquivalenceTests(LlamaModelFixture model) : GenAiEquivalenceTests(model);

[Collection(Qwen2ModelCollection.Name)]
public sealed class Qwen2GenAiEquivalenceTests(Qwen2ModelFixture model) : GenAiEquivalenceTests(model);

[Collection(Float16ModelCollection.Name)]
public sealed class Float16GenAiEquivalenceTests(Float16ModelFixture model) : GenAiEquivalenceTests(model);

[Collection(BFloat16ModelCollection.Name)]
public sealed class BFloat16GenAiEquivalenceTests(BFloat16ModelFixture model) : GenAiEquivalenceTests(model);

[Collection(Int4ModelCollection.Name)]
public sealed class Int4GenAiEquivalenceTests(Int4ModelFixture model) : GenAiEquivalenceTests(model);
