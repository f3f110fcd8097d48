using Appliance.Engine;
using Appliance.Engine.Scheduling;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Runtime.Onnx.Tokenization;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests;

/// <summary>Writes a tiny synthetic model once per test collection and opens engines over it.</summary>
public abstract class TinyModelFixture : IDisposable
{
    private readonly TempFolder _root;
    private readonly Lazy<SyntheticReferenceModel> _reference;

    protected TinyModelFixture(SyntheticModelSpec spec, string name)
    {
        Spec = spec;
        _root = new TempFolder($"tiny-{name}");
        Folder = _root.Path;
        SyntheticModelFolder.Write(Spec, Folder);
        _reference = new Lazy<SyntheticReferenceModel>(() => SyntheticReferenceModel.Create(Spec));
    }

    public SyntheticModelSpec Spec { get; }

    public string Folder { get; }

    /// <summary>Greedy tokens of the C# reference forward pass.</summary>
    public List<int> Greedy(IReadOnlyList<int> prompt, int maxNewTokens) => _reference.Value.GenerateGreedy(prompt, maxNewTokens);

    public OnnxDecoderRunner CreateRunner(int maxBatchSize = 8, long? logitsBudgetBytes = null, int? prefixCacheTokens = null, int prefixBlockTokens = RunnerOptions.DefaultPrefixBlockTokens) =>
        new(ModelFolder.Open(Folder), "tiny", new RunnerOptions
        {
            MaxBatchSize = maxBatchSize, IntraOpThreads = 2, LogitsBudgetBytes = logitsBudgetBytes,
            PrefixCacheTokens = prefixCacheTokens, PrefixBlockTokens = prefixBlockTokens,
        });

    public GenerationEngine CreateEngine(SchedulerOptions? options = null)
    {
        options ??= new SchedulerOptions();
        return new GenerationEngine(CreateRunner(options.MaxBatchSize), Gpt2Tokenizer.Instance, options);
    }

    public void Dispose() => _root.Dispose();
}

/// <summary>The tiny model with a concatenating KV cache (Optimum-style export).</summary>
public sealed class ConcatModelFixture() : TinyModelFixture(SyntheticModelSpec.Tiny with { Layout = KvCacheLayout.Concatenating }, "concat");

/// <summary>The tiny model with GroupQueryAttention and a shared past/present buffer (GPT-2 graph).</summary>
public sealed class SharedBufferModelFixture() : TinyModelFixture(SyntheticModelSpec.Tiny with { Layout = KvCacheLayout.SharedBuffer }, "shared");

/// <summary>Model-builder style Llama, float32 (the builder's CPU export).</summary>
public sealed class LlamaModelFixture() : TinyModelFixture(SyntheticModelSpec.TinyLlama, "llama");

/// <summary>Model-builder style Qwen2: QKV bias, a sliding window on odd layers, weights in model.onnx.data.</summary>
public sealed class Qwen2ModelFixture() : TinyModelFixture(
    SyntheticModelSpec.TinyLlama with { ModelType = "qwen2", QkvBias = true, SlidingWindow = 8, ExternalData = true, Seed = 7 }, "qwen2");

/// <summary>The Llama with a float16 KV cache and logits, attention in float16 (as CUDA exports present themselves).</summary>
public sealed class Float16ModelFixture() : TinyModelFixture(SyntheticModelSpec.TinyLlama with { Precision = BoundaryPrecision.Float16 }, "fp16");

/// <summary>The Llama with a bfloat16 KV cache and logits around float32 compute.</summary>
public sealed class BFloat16ModelFixture() : TinyModelFixture(SyntheticModelSpec.TinyLlama with { Precision = BoundaryPrecision.BFloat16 }, "bf16");

/// <summary>The Llama with int4 MatMulNBits weights (the builder's CPU int4 export: blocks of 32, accuracy level 4).</summary>
public sealed class Int4ModelFixture() : TinyModelFixture(SyntheticModelSpec.TinyLlama with { Int4Weights = true }, "int4");

/// <summary>The Llama with LongRoPE's two rotary caches, switching at 20 positions (Phi-3.5 and Phi-4-mini switch at 4,096).</summary>
public sealed class LongRopeModelFixture() : TinyModelFixture(SyntheticModelSpec.TinyLlama with { LongRopeSwitch = LongRopeModelFixture.Switch, Seed = 11 }, "longrope")
{
    public const int Switch = 20;
}

[CollectionDefinition(Name)]
public sealed class LongRopeModelCollection : ICollectionFixture<LongRopeModelFixture>
{
    public const string Name = "builder-style llama, LongRoPE";
}

[CollectionDefinition(Name)]
public sealed class ConcatModelCollection : ICollectionFixture<ConcatModelFixture>
{
    public const string Name = "tiny synthetic model, concatenating KV";
}

[CollectionDefinition(Name)]
public sealed class SharedBufferModelCollection : ICollectionFixture<SharedBufferModelFixture>
{
    public const string Name = "tiny synthetic model, shared-buffer KV";
}

[CollectionDefinition(Name)]
public sealed class LlamaModelCollection : ICollectionFixture<LlamaModelFixture>
{
    public const string Name = "builder-style llama, float32";
}

[CollectionDefinition(Name)]
public sealed class Qwen2ModelCollection : ICollectionFixture<Qwen2ModelFixture>
{
    public const string Name = "builder-style qwen2, bias, window, external data";
}

[CollectionDefinition(Name)]
public sealed class Float16ModelCollection : ICollectionFixture<Float16ModelFixture>
{
    public const string Name = "builder-style llama, float16 boundary";
}

[CollectionDefinition(Name)]
public sealed class BFloat16ModelCollection : ICollectionFixture<BFloat16ModelFixture>
{
    public const string Name = "builder-style llama, bfloat16 boundary";
}

[CollectionDefinition(Name)]
public sealed class Int4ModelCollection : ICollectionFixture<Int4ModelFixture>
{
    public const string Name = "builder-style llama, int4 weights";
}
