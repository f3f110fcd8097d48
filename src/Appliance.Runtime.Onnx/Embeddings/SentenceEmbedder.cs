using Appliance.Engine;
using Appliance.Engine.Embeddings;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Tokenizers;

namespace Appliance.Runtime.Onnx.Embeddings;

/// <summary>
/// A BERT-style sentence-embedding model (for example all-MiniLM-L6-v2): WordPiece tokens in, last_hidden_state out,
/// mean pooling over real tokens and L2 normalisation, as sentence-transformers does.
/// </summary>
public sealed class SentenceEmbedder : ITextEmbedder, IDisposable
{
    public const string ModelFileName = "model.onnx";
    public const string VocabularyFileName = "vocab.txt";

    /// <summary>Most inputs one model run takes: a 2,048-input request padded to its longest in one run took gigabytes.</summary>
    public const int RowsPerRun = 32;

    private readonly InferenceSession _session;
    private readonly BertTokenizer _tokenizer;
    private readonly bool _hasTokenTypes;

    /// <summary>Most requests waiting for their turn; more are refused (429) rather than queued without end.</summary>
    public const int MaxWaitingRequests = 64;

    // One run at a time: concurrent requests take turns run by run (SemaphoreSlim serves asynchronous waiters in
    // order, and a request queues again for each of its runs), so memory stays that of one small run and a large
    // request does not hold up a small one for its whole length. Waiting holds no thread.
    private readonly SemaphoreSlim _runs = new(1, 1);
    private int _requests;

    private SentenceEmbedder(InferenceSession session, BertTokenizer tokenizer, int dimensions, int maxTokens, string digest)
    {
        _session = session;
        _tokenizer = tokenizer;
        _hasTokenTypes = session.InputMetadata.ContainsKey("token_type_ids");
        Dimensions = dimensions;
        MaxTokens = maxTokens;
        Digest = digest;
    }

    public int Dimensions { get; }

    public int MaxTokens { get; }

    public string Digest { get; }

    /// <summary>Opens a verified folder holding model.onnx, vocab.txt and manifest.json.</summary>
    public static SentenceEmbedder Open(string folder, int maxTokens = 256, int intraOpThreads = 0, ILogger? logger = null)
    {
        var manifest = ModelManifest.Verify(folder);
        foreach (var file in new[] { ModelFileName, VocabularyFileName })
        {
            if (!manifest.Lists(file))
            {
                throw new ModelFolderException($"{folder}: '{file}' is not listed in the manifest.");
            }
        }

        var (session, _) = SessionFactory.Create(Path.Combine(folder, ModelFileName), new RunnerOptions { IntraOpThreads = intraOpThreads }, SessionSettings.Default, logger ?? NullLogger.Instance);
        var output = session.OutputMetadata.Values.First();
        var dimensions = output.Dimensions[^1];
        if (dimensions <= 0 || !session.InputMetadata.ContainsKey("input_ids") || !session.InputMetadata.ContainsKey("attention_mask"))
        {
            session.Dispose();
            throw new ModelFolderException($"{folder}: the model must take input_ids and attention_mask and return [batch, tokens, hidden].");
        }

        // An uncased model: transformers' BertTokenizer lowercases and, with strip_accents unset, strips accents too
        // ("café" is "cafe"), so the vectors match those computed with sentence-transformers.
        var tokenizer = BertTokenizer.Create(Path.Combine(folder, VocabularyFileName), new BertOptions { LowerCaseBeforeTokenization = true, RemoveNonSpacingMarks = true });
        return new SentenceEmbedder(session, tokenizer, dimensions, maxTokens, manifest.Digest);
    }

    public int CountTokens(string text) => _tokenizer.EncodeToIds(text, addSpecialTokens: true, considerPreTokenization: true, considerNormalization: true).Count;

    public async Task<EmbeddingBatch> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellation = default, Action<int>? ran = null)
    {
        if (Interlocked.Increment(ref _requests) > MaxWaitingRequests + 1)
        {
            Interlocked.Decrement(ref _requests);
            throw new EngineOverloadedException($"The embedding model has {MaxWaitingRequests} requests waiting. Please retry after a short wait.", MaxWaitingRequests);
        }

        try
        {
            return await EmbedInTurnsAsync(texts, cancellation, ran);
        }
        finally
        {
            Interlocked.Decrement(ref _requests);
        }
    }

    private async Task<EmbeddingBatch> EmbedInTurnsAsync(IReadOnlyList<string> texts, CancellationToken cancellation, Action<int>? ran)
    {
        var encoded = texts.Select(t => _tokenizer.EncodeToIds(t, addSpecialTokens: true, considerPreTokenization: true, considerNormalization: true)).ToList();
        var tooLong = encoded.FindIndex(e => e.Count > MaxTokens);
        if (tooLong >= 0)
        {
            throw new ArgumentException($"Input {tooLong} has {encoded[tooLong].Count} tokens; the model takes at most {MaxTokens}.");
        }

        // Runs of inputs of similar length (little padding), each vector written back at its input's place.
        var vectors = new float[encoded.Count][];
        foreach (var run in Enumerable.Range(0, encoded.Count).OrderBy(i => encoded[i].Count).Chunk(RowsPerRun))
        {
            await _runs.WaitAsync(cancellation);
            try
            {
                cancellation.ThrowIfCancellationRequested(); // a client that left, or a request past its time, stops between runs
                var pooled = Run([.. run.Select(i => encoded[i])]);
                for (var k = 0; k < run.Length; k++)
                {
                    vectors[run[k]] = pooled[k];
                }

                ran?.Invoke(run.Sum(i => encoded[i].Count));
            }
            finally
            {
                _runs.Release();
            }
        }

        return new EmbeddingBatch(vectors, encoded.Sum(e => e.Count));
    }

    /// <summary>One model run over a few inputs, padded to the longest of them.</summary>
    private float[][] Run(IReadOnlyList<IReadOnlyList<int>> encoded)
    {
        var rows = encoded.Count;
        var width = encoded.Max(e => e.Count);
        var ids = new long[rows * width];
        var mask = new long[rows * width];
        for (var row = 0; row < rows; row++)
        {
            for (var j = 0; j < encoded[row].Count; j++)
            {
                ids[(row * width) + j] = encoded[row][j];
                mask[(row * width) + j] = 1;
            }
        }

        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, [rows, width]);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, [rows, width]);
        using var typesValue = OrtValue.CreateTensorValueFromMemory(new long[rows * width], [rows, width]);
        var names = new List<string> { "input_ids", "attention_mask" };
        var values = new List<OrtValue> { idsValue, maskValue };
        if (_hasTokenTypes)
        {
            names.Add("token_type_ids");
            values.Add(typesValue);
        }

        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, names, values, [_session.OutputNames[0]]);
        var hidden = outputs[0].GetTensorDataAsSpan<float>();
        var vectors = new float[rows][];
        for (var row = 0; row < rows; row++)
        {
            vectors[row] = MeanPoolAndNormalise(hidden, row, width, encoded[row].Count);
        }

        return vectors;
    }

    private float[] MeanPoolAndNormalise(ReadOnlySpan<float> hidden, int row, int width, int tokens)
    {
        var vector = new float[Dimensions];
        for (var t = 0; t < tokens; t++)
        {
            var state = hidden.Slice(((row * width) + t) * Dimensions, Dimensions);
            for (var i = 0; i < Dimensions; i++)
            {
                vector[i] += state[i];
            }
        }

        var norm = 0.0;
        for (var i = 0; i < Dimensions; i++)
        {
            vector[i] /= tokens;
            norm += vector[i] * vector[i];
        }

        var scale = (float)(1.0 / Math.Max(Math.Sqrt(norm), 1e-12));
        for (var i = 0; i < Dimensions; i++)
        {
            vector[i] *= scale;
        }

        return vector;
    }

    public void Dispose()
    {
        _session.Dispose();
        _runs.Dispose();
    }
}
