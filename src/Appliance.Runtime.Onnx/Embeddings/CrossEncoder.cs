using Appliance.Engine.Embeddings;
using Appliance.Runtime.Onnx.Execution;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Appliance.Runtime.Onnx.Embeddings;

/// <summary>
/// A cross-encoder (ms-marco-MiniLM, bge-reranker-v2-m3): the query and a document read together as [CLS] query [SEP]
/// document [SEP] (token types 0 then 1) or, in the RoBERTa family, &lt;s&gt; query &lt;/s&gt;&lt;/s&gt; document &lt;/s&gt;;
/// one logit out, scored as sentence-transformers' CrossEncoder scores a one-label model (a sigmoid, unless its
/// configuration names Identity). A document longer than the model's length beside the query is cut at its end, as
/// rerank services do.
/// </summary>
public sealed class CrossEncoder : ITextReranker, IDisposable
{
    /// <summary>Most pairs one model run takes (memory stays that of a small run, and requests take turns run by run).</summary>
    public const int PairsPerRun = 16;

    private readonly EncoderSession _session;
    private readonly IEncoderTokenizer _tokenizer;
    private readonly string _output;

    private readonly bool _sigmoid;

    private CrossEncoder(EncoderSession session, IEncoderTokenizer tokenizer, EncoderSpec spec, string output)
    {
        _session = session;
        _tokenizer = tokenizer;
        _output = output;
        _sigmoid = spec.SigmoidScores;
        MaxTokens = spec.MaxTokens;
        Digest = spec.Digest;
    }

    public int MaxTokens { get; }

    public string Digest { get; }

    /// <param name="sessionConfig">ONNX Runtime session configuration entries (Models:&lt;id&gt;:SessionConfig).</param>
    public static CrossEncoder Open(EncoderSpec spec, int intraOpThreads = 0, ILogger? logger = null, IReadOnlyDictionary<string, string>? sessionConfig = null)
    {
        if (spec.Task != EncoderTask.Reranking)
        {
            throw new Models.ModelFolderException($"{spec.Folder}: an embedding model, not a cross-encoder.");
        }

        var tokenizer = EncoderTokenizers.Create(spec.Tokenizer);
        var options = new RunnerOptions { IntraOpThreads = intraOpThreads, SessionConfig = sessionConfig ?? new Dictionary<string, string>() };
        var (session, _) = SessionFactory.Create(spec.ModelPath, options, SessionSettings.Default, logger ?? NullLogger.Instance);
        try
        {
            var output = session.OutputMetadata.ContainsKey("logits") ? "logits" : session.OutputNames[0];
            var shape = session.OutputMetadata[output].Dimensions;
            if (shape.Length != 2 || shape[1] != 1 || !session.InputMetadata.ContainsKey("input_ids") || !session.InputMetadata.ContainsKey("attention_mask"))
            {
                throw new Models.ModelFolderException($"{spec.Folder}: a cross-encoder must take input_ids and attention_mask and return one logit per pair [batch, 1].");
            }

            EncoderOutputs.RequireFloat(spec.Folder, session, output);
            return new CrossEncoder(new EncoderSession(session, Path.GetFileName(spec.Folder)), tokenizer, spec, output);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>The part of a pair before the document: [CLS] query [SEP] (BERT), &lt;s&gt; query &lt;/s&gt;&lt;/s&gt; (RoBERTa).</summary>
    public int QueryTokens(string query) => _tokenizer.Pieces(query).Count + _tokenizer.PairSpecialTokens - 1;

    public Task<RerankBatch> ScoreAsync(string query, IReadOnlyList<string> documents, int maxDocumentTokens, CancellationToken cancellation = default, Action<int>? ran = null) =>
        _session.EnterAsync(() => ScoreInTurnsAsync(query, documents, maxDocumentTokens, cancellation, ran));

    private async Task<RerankBatch> ScoreInTurnsAsync(string query, IReadOnlyList<string> documents, int maxDocumentTokens, CancellationToken cancellation, Action<int>? ran)
    {
        var head = _tokenizer.Pieces(query);
        var room = Math.Min(maxDocumentTokens, MaxTokens - head.Count - _tokenizer.PairSpecialTokens);
        if (room < 1)
        {
            throw new ArgumentException($"The query has {head.Count + _tokenizer.PairSpecialTokens} tokens with a pair's special tokens; the model takes at most {MaxTokens} for the query and a document together.");
        }

        var pairs = new List<int>[documents.Count];
        var types = new List<int>[documents.Count];
        for (var i = 0; i < documents.Count; i++)
        {
            (pairs[i], types[i]) = _tokenizer.Pair(head, [.. _tokenizer.Pieces(documents[i]).Take(room)]);
        }

        var scores = new double[documents.Count];
        foreach (var run in EncoderSession.Runs([.. pairs.Select(p => p.Count)], PairsPerRun))
        {
            var logits = await _session.RunInTurnAsync(() => Run([.. run.Select(i => pairs[i])], [.. run.Select(i => types[i])]), cancellation);
            for (var k = 0; k < run.Length; k++)
            {
                scores[run[k]] = _sigmoid ? 1.0 / (1.0 + Math.Exp(-logits[k])) : logits[k];
            }

            ran?.Invoke(run.Sum(i => pairs[i].Count));
        }

        return new RerankBatch(scores, pairs.Sum(p => p.Count));
    }

    private float[] Run(IReadOnlyList<IReadOnlyList<int>> pairs, IReadOnlyList<IReadOnlyList<int>> types)
    {
        using var outputs = _session.Run(pairs, types, _output);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    public void Dispose() => _session.Dispose();
}
