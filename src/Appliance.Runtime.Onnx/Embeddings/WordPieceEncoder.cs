using Microsoft.ML.Tokenizers;

namespace Appliance.Runtime.Onnx.Embeddings;

/// <summary>
/// A folder's WordPiece tokenizer (Microsoft.ML.Tokenizers' BertTokenizer with the folder's casing and special tokens),
/// putting the special tokens around one text or a pair as BERT does: [CLS] a [SEP], [CLS] a [SEP] b [SEP].
/// </summary>
internal sealed class WordPieceEncoder : IEncoderTokenizer
{
    private readonly BertTokenizer _tokenizer;

    public WordPieceEncoder(WordPieceSettings settings)
    {
        _robertaPairs = settings.RobertaPairs;
        using var vocabulary = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(string.Join('\n', settings.Vocabulary) + "\n"));
        _tokenizer = BertTokenizer.Create(vocabulary, new BertOptions
        {
            LowerCaseBeforeTokenization = settings.LowerCase,
            RemoveNonSpacingMarks = settings.StripAccents,
            ClassificationToken = settings.ClassificationToken,
            SeparatorToken = settings.SeparatorToken,
            UnknownToken = settings.UnknownToken,
            PaddingToken = settings.PaddingToken,
            // Never used here, but the tokenizer insists that its mask token be in the vocabulary.
            MaskingToken = settings.Vocabulary.Contains("[MASK]") ? "[MASK]" : settings.Vocabulary.Contains("<mask>") ? "<mask>" : settings.UnknownToken,
        });
    }

    private readonly bool _robertaPairs;

    public int ClassificationId => _tokenizer.ClassificationTokenId;

    public int PairSpecialTokens => _robertaPairs ? 4 : 3;

    public int SeparatorId => _tokenizer.SeparatorTokenId;

    /// <summary>The text's pieces, without special tokens.</summary>
    public IReadOnlyList<int> Pieces(string text) =>
        _tokenizer.EncodeToIds(text, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true);

    /// <summary>[CLS] text [SEP].</summary>
    public IReadOnlyList<int> Single(string text) => [ClassificationId, .. Pieces(text), SeparatorId];

    /// <summary>[CLS] text [SEP], the text cut at its end so that the whole holds at most <paramref name="maxTokens"/> (at least 2).</summary>
    public IReadOnlyList<int> Single(string text, int maxTokens) => [ClassificationId, .. Pieces(text).Take(maxTokens - 2), SeparatorId];

    /// <summary>[CLS] query [SEP] document [SEP], types 0 then 1; or &lt;s&gt; query &lt;/s&gt;&lt;/s&gt; document &lt;/s&gt;, all 0 (MPNet).</summary>
    public (List<int> Ids, List<int> Types) Pair(IReadOnlyList<int> query, IReadOnlyList<int> document)
    {
        List<int> ids = _robertaPairs
            ? [ClassificationId, .. query, SeparatorId, SeparatorId, .. document, SeparatorId]
            : [ClassificationId, .. query, SeparatorId, .. document, SeparatorId];
        List<int> types = _robertaPairs
            ? [.. Enumerable.Repeat(0, ids.Count)]
            : [.. Enumerable.Repeat(0, query.Count + 2), .. Enumerable.Repeat(1, document.Count + 1)];
        return (ids, types);
    }
}
