namespace Appliance.Runtime.Onnx.Embeddings;

/// <summary>What an encoder model folder serves.</summary>
public enum EncoderTask
{
    /// <summary>A sentence-embedding model (sentence-transformers): one vector per text.</summary>
    Embedding,

    /// <summary>A cross-encoder (a *ForSequenceClassification export with one label): one score per query and document.</summary>
    Reranking,
}

/// <summary>How token states become one vector, as sentence-transformers' Pooling module says.</summary>
public enum EncoderPooling
{
    /// <summary>The average of the real tokens' states (all-MiniLM, e5, gte).</summary>
    Mean,

    /// <summary>The first token's state (bge, mxbai, arctic-embed).</summary>
    Cls,
}

/// <summary>An encoder's tokenizer as its folder describes it.</summary>
public abstract record EncoderTokenizerSettings
{
    /// <summary>A pair is &lt;s&gt; a &lt;/s&gt;&lt;/s&gt; b &lt;/s&gt; with no token types (RoBERTa's), not BERT's [CLS] a [SEP] b [SEP].</summary>
    public abstract bool RobertaPairs { get; }

    /// <summary>How `model verify` names it.</summary>
    public abstract string Describe();
}

/// <summary>A WordPiece (BERT-family) tokenizer as the folder describes it.</summary>
/// <param name="Vocabulary">The pieces in id order (vocab.txt's lines, or tokenizer.json's vocab sorted by id).</param>
/// <param name="RobertaPairs">Its post-processor is RoBERTa's (MPNet): a pair is &lt;s&gt; a &lt;/s&gt;&lt;/s&gt; b &lt;/s&gt;, not BERT's.</param>
public sealed record WordPieceSettings(
    IReadOnlyList<string> Vocabulary,
    bool LowerCase,
    bool StripAccents,
    string ClassificationToken,
    string SeparatorToken,
    string UnknownToken,
    string PaddingToken,
    bool RobertaPairs = false) : EncoderTokenizerSettings
{
    public override bool RobertaPairs { get; } = RobertaPairs;

    public override string Describe() => $"WordPiece, {Vocabulary.Count} pieces, {(LowerCase ? "lowercased" : "cased")}";
}

/// <summary>
/// XLM-RoBERTa's tokenizer (bge-m3, multilingual-e5, bge-reranker-v2-m3): the SentencePiece Unigram model
/// sentencepiece.bpe.model, its ids shifted as fairseq's vocabulary has them (&lt;s&gt; 0, &lt;pad&gt; 1, &lt;/s&gt; 2,
/// &lt;unk&gt; 3, then the model's pieces one place up).
/// </summary>
public sealed record XlmRobertaSettings(string ModelPath) : EncoderTokenizerSettings
{
    public override bool RobertaPairs => true;

    public override string Describe() => "XLM-RoBERTa SentencePiece (Unigram), cased";
}

/// <summary>A verified encoder folder, read: the model file, what it serves, its tokenizer, pooling and length.</summary>
/// <param name="SigmoidScores">
/// A cross-encoder's scores go through a sigmoid (0 to 1), as sentence-transformers' CrossEncoder scores a one-label
/// model unless its config.json names the Identity activation (ms-marco cross-encoders: raw logits).
/// </param>
public sealed record EncoderSpec(
    string Folder,
    string ModelPath,
    EncoderTask Task,
    EncoderPooling Pooling,
    int MaxTokens,
    EncoderTokenizerSettings Tokenizer,
    string Digest,
    bool SigmoidScores = true);

/// <summary>What the administrator's settings may change about an encoder folder.</summary>
/// <param name="Pooling">"auto" (the folder's sentence-transformers files decide), "mean" or "cls".</param>
/// <param name="MaxTokens">Fewer tokens per input than the model takes (memory, speed); null: the model's own length.</param>
public sealed record EncoderSettings(string Pooling = "auto", int? MaxTokens = null);
