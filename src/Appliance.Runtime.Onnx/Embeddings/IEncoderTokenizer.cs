namespace Appliance.Runtime.Onnx.Embeddings;

/// <summary>An encoder's tokenizer with the special tokens its model was trained with, around one text or a pair.</summary>
internal interface IEncoderTokenizer
{
    /// <summary>Special tokens a pair adds: 3 for BERT's [CLS] a [SEP] b [SEP], 4 for RoBERTa's &lt;s&gt; a &lt;/s&gt;&lt;/s&gt; b &lt;/s&gt;.</summary>
    int PairSpecialTokens { get; }

    /// <summary>The text's pieces, without special tokens.</summary>
    IReadOnlyList<int> Pieces(string text);

    /// <summary>The text between its start and end tokens.</summary>
    IReadOnlyList<int> Single(string text);

    /// <summary>As <see cref="Single(string)"/>, the text cut at its end so that the whole holds at most <paramref name="maxTokens"/> (at least 2).</summary>
    IReadOnlyList<int> Single(string text, int maxTokens);

    /// <summary>A query and a document as one input, with the token types the model reads.</summary>
    (List<int> Ids, List<int> Types) Pair(IReadOnlyList<int> query, IReadOnlyList<int> document);
}

internal static class EncoderTokenizers
{
    public static IEncoderTokenizer Create(EncoderTokenizerSettings settings) => settings switch
    {
        WordPieceSettings wordPiece => new WordPieceEncoder(wordPiece),
        XlmRobertaSettings xlmRoberta => new XlmRobertaEncoder(xlmRoberta),
        _ => throw new ArgumentOutOfRangeException(nameof(settings), settings.GetType().Name, "no such tokenizer kind"),
    };
}
