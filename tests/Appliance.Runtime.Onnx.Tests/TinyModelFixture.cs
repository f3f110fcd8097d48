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

    protected TinyModelFixture(KvCacheLayout layout)
    {
        Spec = SyntheticModelSpec.Tiny with { Layout = layout };
        _root = new TempFolder($"tiny-{layout}");
        Folder = _root.Path;
        SyntheticModelFolder.Write(Spec, Folder);
        Weights = SyntheticWeights.Create(Spec);
    }

    public SyntheticModelSpec Spec { get; }

    public string Folder { get; }

    public SyntheticWeights Weights { get; }

    public OnnxDecoderRunner CreateRunner(int maxBatchSize = 8) =>
        new(ModelFolder.Open(Folder), "tiny", new RunnerOptions { MaxBatchSize = maxBatchSize, IntraOpThreads = 2 });

    public GenerationEngine CreateEngine(SchedulerOptions? options = null)
    {
        options ??= new SchedulerOptions();
        return new GenerationEngine(CreateRunner(options.MaxBatchSize), Gpt2Tokenizer.Instance, options);
    }

    public void Dispose() => _root.Dispose();
}

/// <summary>The tiny model with a concatenating KV cache (Optimum-style export).</summary>
public sealed class ConcatModelFixture() : TinyModelFixture(KvCacheLayout.Concatenating);

/// <summary>The tiny model with GroupQueryAttention and a shared past/present buffer (model-builder-style export).</summary>
public sealed class SharedBufferModelFixture() : TinyModelFixture(KvCacheLayout.SharedBuffer);

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
