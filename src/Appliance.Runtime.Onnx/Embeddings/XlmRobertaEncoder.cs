using Microsoft.ML.Tokenizers;

namespace Appliance.Runtime.Onnx.Embeddings;

/// <summary>
/// XLM-RoBERTa's tokenizer as transformers' XLMRobertaTokenizer applies it: the SentencePiece Unigram model (with its
/// compiled normalization, through Microsoft.ML.Tokenizers), each piece's id one above the model's (fairseq's
/// vocabulary puts &lt;s&gt; 0, &lt;pad&gt; 1, &lt;/s&gt; 2, &lt;unk&gt; 3 first), an unknown piece &lt;unk&gt;; a text is
/// &lt;s&gt; text &lt;/s&gt; and a pair &lt;s&gt; a &lt;/s&gt;&lt;/s&gt; b &lt;/s&gt;.
/// </summary>
internal sealed class XlmRobertaEncoder : IEncoderTokenizer
{
    private const int Start = 0;
    private const int End = 2;
    private const int Unknown = 3;
    private const int FairseqOffset = 1;

    private readonly SentencePieceTokenizer _tokenizer;

    public XlmRobertaEncoder(XlmRobertaSettings settings)
    {
        using var model = File.OpenRead(settings.ModelPath);
        _tokenizer = SentencePieceTokenizer.Create(model, addBeginningOfSentence: false, addEndOfSentence: false);
    }

    public int PairSpecialTokens => 4;

    public IReadOnlyList<int> Pieces(string text)
    {
        var ids = _tokenizer.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false, considerPreTokenization: true, considerNormalization: true);
        var pieces = new List<int>(ids.Count);
        foreach (var id in ids)
        {
            // SentencePiece (and transformers) fuse a run of unknown characters into one <unk>.
            if (id == _tokenizer.UnknownId && pieces.Count > 0 && pieces[^1] == Unknown)
            {
                continue;
            }

            pieces.Add(id == _tokenizer.UnknownId ? Unknown : id + FairseqOffset);
        }

        return pieces;
    }

    public IReadOnlyList<int> Single(string text) => [Start, .. Pieces(text), End];

    public IReadOnlyList<int> Single(string text, int maxTokens) => [Start, .. Pieces(text).Take(maxTokens - 2), End];

    public (List<int> Ids, List<int> Types) Pair(IReadOnlyList<int> query, IReadOnlyList<int> document)
    {
        List<int> ids = [Start, .. query, End, End, .. document, End];
        return (ids, [.. Enumerable.Repeat(0, ids.Count)]);
    }
}
