using Appliance.Engine;
using Appliance.Engine.Scheduling;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Runtime.Onnx.Tokenization;

namespace Appliance.Runtime.Onnx.Tests;

/// <summary>Writes the tiny synthetic model once per test collection and opens engines over it.</summary>
public sealed class TinyModelFixture : IDisposable
{
    public TinyModelFixture()
    {
        Folder = Path.Combine(Path.GetTempPath(), "appliance-tests", $"tiny-{Environment.ProcessId}-{Guid.NewGuid():N}");
        SyntheticModelFolder.Write(Spec, Folder);
        Weights = SyntheticWeights.Create(Spec);
    }

    public static SyntheticModelSpec Spec { get; } = SyntheticModelSpec.Tiny;

    public string Folder { get; }

    public SyntheticWeights Weights { get; }

    public OnnxDecoderRunner CreateRunner(int maxBatchSize = 8) =>
        new(ModelFolder.Open(Folder), "tiny", new RunnerOptions { MaxBatchSize = maxBatchSize, IntraOpThreads = 2 });

    public GenerationEngine CreateEngine(SchedulerOptions? options = null)
    {
        options ??= new SchedulerOptions();
        return new GenerationEngine(CreateRunner(options.MaxBatchSize), Gpt2Tokenizer.Instance, options);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // Leftovers in the temp folder are harmless.
        }
    }
}

[CollectionDefinition(Name)]
public sealed class TinyModelCollection : ICollectionFixture<TinyModelFixture>
{
    public const string Name = "tiny synthetic model";
}
