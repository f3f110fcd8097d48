using Appliance.Engine.Embeddings;
using Appliance.Runtime.Onnx.Execution;
using Appliance.Runtime.Onnx.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Runtime.Onnx.Embeddings;

/// <summary>
/// A sentence-embedding model of the BERT or XLM-RoBERTa family (all-MiniLM-L6-v2, bge, e5, gte, multilingual-e5,
/// bge-m3): tokens in, token states out,
/// pooled as the folder says (mean over real tokens, or the first token) and L2-normalised, as sentence-transformers
/// computes them.
/// </summary>
public sealed class SentenceEmbedder : ITextEmbedder, IDisposable
{
    public const string ModelFileName = "model.onnx";
    public const string VocabularyFileName = "vocab.txt";

    /// <summary>Most inputs one model run takes: a 2,048-input request padded to its longest in one run took gigabytes.</summary>
    public const int RowsPerRun = 32;

    /// <summary>Most requests waiting for their turn; more are refused (429) rather than queued without end.</summary>
    public const int MaxWaitingRequests = EncoderSession.MaxWaitingRequests;

    private static readonly string[] StateOutputs = ["last_hidden_state", "token_embeddings"];

    private readonly EncoderSession _session;
    private readonly IEncoderTokenizer _tokenizer;
    private readonly EncoderPooling _pooling;
    private readonly string _output;

    private SentenceEmbedder(EncoderSession session, IEncoderTokenizer tokenizer, EncoderSpec spec, string output, int dimensions)
    {
        _session = session;
        _tokenizer = tokenizer;
        _pooling = spec.Pooling;
        _output = output;
        Dimensions = dimensions;
        MaxTokens = spec.MaxTokens;
        Digest = spec.Digest;
    }

    public int Dimensions { get; }

    public int MaxTokens { get; }

    public string Digest { get; }

    public EncoderPooling Pooling => _pooling;

    /// <summary>Opens the packaged all-MiniLM-L6-v2 folder (model.onnx, vocab.txt, manifest.json): uncased, mean pooling.</summary>
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

        // An uncased model: transformers' BertTokenizer lowercases and, with strip_accents unset, strips accents too
        // ("café" is "cafe"), so the vectors match those computed with sentence-transformers.
        var vocabulary = File.ReadAllLines(Path.Combine(folder, VocabularyFileName));
        var tokenizer = new WordPieceSettings(vocabulary, LowerCase: true, StripAccents: true, "[CLS]", "[SEP]", "[UNK]", "[PAD]");
        return Open(new EncoderSpec(folder, Path.Combine(folder, ModelFileName), EncoderTask.Embedding, EncoderPooling.Mean, maxTokens, tokenizer, manifest.Digest), intraOpThreads, logger);
    }

    /// <summary>Opens a folder read by <see cref="EncoderFolder"/>.</summary>
    /// <param name="sessionConfig">ONNX Runtime session configuration entries (Models:&lt;id&gt;:SessionConfig).</param>
    public static SentenceEmbedder Open(EncoderSpec spec, int intraOpThreads = 0, ILogger? logger = null, IReadOnlyDictionary<string, string>? sessionConfig = null)
    {
        if (spec.Task != EncoderTask.Embedding)
        {
            throw new ModelFolderException($"{spec.Folder}: a cross-encoder scores pairs of texts; it makes no embeddings.");
        }

        var tokenizer = EncoderTokenizers.Create(spec.Tokenizer);
        var options = new RunnerOptions { IntraOpThreads = intraOpThreads, SessionConfig = sessionConfig ?? new Dictionary<string, string>() };
        var (session, _) = SessionFactory.Create(spec.ModelPath, options, SessionSettings.Default, logger ?? NullLogger.Instance);
        try
        {
            var states = session.OutputMetadata.Where(o => StateOutputs.Contains(o.Key)).Select(o => o.Key).FirstOrDefault() ?? session.OutputNames[0];
            var shape = session.OutputMetadata[states].Dimensions;
            if (shape.Length != 3 || shape[^1] <= 0 || !session.InputMetadata.ContainsKey("input_ids") || !session.InputMetadata.ContainsKey("attention_mask"))
            {
                throw new ModelFolderException($"{spec.Folder}: the model must take input_ids and attention_mask and return token states [batch, tokens, hidden] (last_hidden_state).");
            }

            EncoderOutputs.RequireFloat(spec.Folder, session, states);

            return new SentenceEmbedder(new EncoderSession(session, Path.GetFileName(spec.Folder)), tokenizer, spec, states, shape[^1]);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    public int CountTokens(string text) => _tokenizer.Single(text).Count;

    public Task<EmbeddingBatch> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellation = default, Action<int>? ran = null, int? cutAt = null) =>
        _session.EnterAsync(() => EmbedInTurnsAsync(texts, cancellation, ran, cutAt is { } cut ? Math.Clamp(cut, 2, MaxTokens) : null));

    private async Task<EmbeddingBatch> EmbedInTurnsAsync(IReadOnlyList<string> texts, CancellationToken cancellation, Action<int>? ran, int? cutAt)
    {
        var encoded = texts.Select(t => cutAt is { } cut ? _tokenizer.Single(t, cut) : _tokenizer.Single(t)).ToList();
        var tooLong = encoded.FindIndex(e => e.Count > MaxTokens);
        if (tooLong >= 0)
        {
            throw new ArgumentException($"Input {tooLong} has {encoded[tooLong].Count} tokens; the model takes at most {MaxTokens}.");
        }

        // Runs of inputs of similar length (little padding), each vector written back at its input's place.
        var vectors = new float[encoded.Count][];
        foreach (var run in EncoderSession.Runs([.. encoded.Select(e => e.Count)], RowsPerRun))
        {
            var pooled = await _session.RunInTurnAsync(() => Run([.. run.Select(i => encoded[i])]), cancellation);
            for (var k = 0; k < run.Length; k++)
            {
                vectors[run[k]] = pooled[k];
            }

            ran?.Invoke(run.Sum(i => encoded[i].Count));
        }

        return new EmbeddingBatch(vectors, encoded.Sum(e => e.Count));
    }

    /// <summary>One model run over a few inputs, padded to the longest of them.</summary>
    private float[][] Run(IReadOnlyList<IReadOnlyList<int>> encoded)
    {
        using var outputs = _session.Run(encoded, null, _output);
        var hidden = outputs[0].GetTensorDataAsSpan<float>();
        var width = encoded.Max(e => e.Count);
        var vectors = new float[encoded.Count][];
        for (var row = 0; row < encoded.Count; row++)
        {
            vectors[row] = _pooling == EncoderPooling.Cls
                ? Normalised(hidden.Slice(row * width * Dimensions, Dimensions).ToArray())
                : Normalised(Mean(hidden, row, width, encoded[row].Count));
        }

        return vectors;
    }

    private float[] Mean(ReadOnlySpan<float> hidden, int row, int width, int tokens)
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

        for (var i = 0; i < Dimensions; i++)
        {
            vector[i] /= tokens;
        }

        return vector;
    }

    private static float[] Normalised(float[] vector)
    {
        var norm = 0.0;
        foreach (var value in vector)
        {
            norm += value * value;
        }

        var scale = (float)(1.0 / Math.Max(Math.Sqrt(norm), 1e-12));
        for (var i = 0; i < vector.Length; i++)
        {
            vector[i] *= scale;
        }

        return vector;
    }

    public void Dispose() => _session.Dispose();
}
