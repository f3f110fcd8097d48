using Appliance.Runtime.Onnx.Embeddings;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.IntegrationTests.Encoders;

/// <summary>
/// One appliance serving encoder folders an administrator declared beside a chat model: "bge-style" (MiniLM's weights
/// with CLS pooling, a WordPiece tokenizer.json, 128 tokens), "minilm-mean" (the same weights as the built-in model,
/// laid out as sentence-transformers does), "reranker" (a synthetic cross-encoder over MiniLM's vocabulary) and "tiny"
/// (a generative model).
/// </summary>
public sealed class EncoderAppliance : IAsyncLifetime
{
    public const string BuiltIn = MiniLmPackage.ModelId;

    private readonly TempFolder _root = new("encoders");
    private RunningAppliance? _running;

    internal RunningAppliance Running => _running ?? throw new InvalidOperationException("the server has not started");

    /// <summary>The packaged MiniLM folder (model.onnx, vocab.txt).</summary>
    public string MiniLm { get; private set; } = string.Empty;

    public SyntheticCrossEncoder CrossEncoder { get; private set; } = null!;

    public IReadOnlyList<string> Vocabulary { get; private set; } = [];

    public async Task InitializeAsync()
    {
        MiniLm = MiniLmPackage.Ensure(_root.Combine("minilm"));
        Vocabulary = File.ReadAllLines(Path.Combine(MiniLm, SentenceEmbedder.VocabularyFileName));
        CrossEncoder = new SyntheticCrossEncoder(Vocabulary.Count);
        CrossEncoder.WriteFolder(_root.Combine("reranker"), Vocabulary, maxPositions: 64);
        EncoderFolders.SentenceTransformers(MiniLm, _root.Combine("bge-style"), "cls", maxSeqLength: 128, tokenizerJson: true);
        EncoderFolders.SentenceTransformers(MiniLm, _root.Combine("minilm-mean"), "mean", maxSeqLength: 256, tokenizerJson: false);
        var tiny = _root.Combine("tiny");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, tiny);
        _running = await RunningAppliance.StartAsync(
        [
            $"--Appliance:DataFolder={_root.Combine("data")}",
            $"--Models:reranker:Path={_root.Combine("reranker")}", "--Models:reranker:IntraOpThreads=1", "--Models:reranker:Aliases:0=rerank-alias",
            $"--Models:bge-style:Path={_root.Combine("bge-style")}", "--Models:bge-style:IntraOpThreads=1",
            $"--Models:minilm-mean:Path={_root.Combine("minilm-mean")}", "--Models:minilm-mean:IntraOpThreads=1",
            $"--Models:tiny:Path={tiny}", "--Models:tiny:IntraOpThreads=1",
            "--Logging:LogLevel:Default=Warning",
        ]);
        await _running.WaitUntilReadyAsync();
    }

    public async Task DisposeAsync()
    {
        if (_running is not null)
        {
            await _running.DisposeAsync();
        }

        _root.Dispose();
    }
}
