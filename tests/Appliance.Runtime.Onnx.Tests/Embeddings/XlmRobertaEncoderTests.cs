using System.Text.Json.Nodes;
using Appliance.Runtime.Onnx.Embeddings;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Embeddings;

/// <summary>
/// XLM-RoBERTa-family encoders (bge-m3, multilingual-e5, bge-reranker-v2-m3): a SentencePiece Unigram model trained
/// here as XLM-RoBERTa's was (NFKC compiled into the model), read through the folder as transformers' XLMRobertaTokenizer
/// reads it, against Debian's spm_encode with fairseq's id shift; a cross-encoder over it scores the pair
/// &lt;s&gt; query &lt;/s&gt;&lt;/s&gt; document &lt;/s&gt;.
/// </summary>
public sealed class XlmRobertaEncoderTests : IDisposable
{
    private static readonly string[] Texts =
    [
        "the model data token",
        "Ｆｕｌｌ-width ｔｏｋｅｎ and ﬁ ligatures", // NFKC rewrites these before the pieces are found
        "données   ça  ün ση κα ни",
        "日本語 12345 quoi?",
        "QXZW JKV the", // runs of characters the corpus never had: one <unk> each
    ];

    private readonly TempFolder _root = new("xlm-roberta");

    /// <summary>
    /// The ids transformers' XLMRobertaTokenizer gives spm_encode's pieces, looked up by their text in fairseq's
    /// vocabulary as the model's tokenizer.json lists it: &lt;s&gt;, &lt;pad&gt;, &lt;/s&gt;, &lt;unk&gt;, then the
    /// SentencePiece model's pieces after its own three specials, then &lt;mask&gt;.
    /// </summary>
    private static int[] Shifted(string spm, string text)
    {
        var vocabulary = SentencePieceModels.Vocabulary(spm);
        string[] fairseq = ["<s>", "<pad>", "</s>", "<unk>", .. vocabulary.Skip(3), "<mask>"];
        var ids = fairseq.Select((piece, id) => (piece, id)).ToDictionary(p => p.piece, p => p.id, StringComparer.Ordinal);
        var pieces = SentencePieceModels.ReferencePieces(spm, text);
        var unknowns = SentencePieceModels.ReferenceIds(spm, text);
        // spm_encode writes an unknown run's text, not "<unk>": its id (0) says it is one.
        return [.. pieces.Select((piece, i) => unknowns[i] == 0 ? ids["<unk>"] : ids[piece])];
    }

    private (string Folder, SyntheticCrossEncoder Model) CrossEncoderFolder(string name, string modelType = "xlm-roberta", bool withModelFile = true)
    {
        var spm = SentencePieceModels.XlmRobertaStyle();
        var folder = _root.Combine(name);
        Directory.CreateDirectory(folder);
        var model = new SyntheticCrossEncoder(SentencePieceModels.PieceCount(spm) + 2); // fairseq adds <pad> and <mask>
        model.WriteModel(Path.Combine(folder, "model.onnx"));
        if (withModelFile)
        {
            File.Copy(spm, Path.Combine(folder, "sentencepiece.bpe.model"));
        }

        File.WriteAllText(Path.Combine(folder, "config.json"), new JsonObject
        {
            ["architectures"] = new JsonArray("XLMRobertaForSequenceClassification"),
            ["model_type"] = modelType,
            ["id2label"] = new JsonObject { ["0"] = "LABEL_0" },
            ["max_position_embeddings"] = 514,
        }.ToJsonString());
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 8192}""");
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), """{"model": {"type": "Unigram"}}""");
        ModelManifest.Create(folder);
        return (folder, model);
    }

    [Fact]
    public void A_text_is_its_pieces_shifted_as_fairseq_shifts_them_between_start_and_end()
    {
        var spm = SentencePieceModels.XlmRobertaStyle();
        var tokenizer = new XlmRobertaEncoder(new XlmRobertaSettings(spm));

        foreach (var text in Texts)
        {
            Assert.Equal([0, .. Shifted(spm, text), 2], tokenizer.Single(text));
        }

        Assert.Contains(3, tokenizer.Pieces(Texts[1])); // capitals the corpus never had: <unk>, as transformers maps it
        Assert.True(SentencePieceModels.ReferenceIds(spm, "QXZW").Length < 4, "the reference split an unknown run into one <unk> per character");
    }

    [Fact]
    public async Task A_cross_encoder_scores_the_roberta_pair_with_no_token_types()
    {
        var (folder, model) = CrossEncoderFolder("reranker");
        var spec = EncoderFolder.Open(folder);
        using var encoder = CrossEncoder.Open(spec, intraOpThreads: 1);
        var spm = SentencePieceModels.XlmRobertaStyle();

        var scored = await encoder.ScoreAsync(Texts[0], Texts[1..], int.MaxValue);

        Assert.Equal((EncoderTask.Reranking, 512), (spec.Task, spec.MaxTokens)); // 514 positions less RoBERTa's offset of 2
        Assert.IsType<XlmRobertaSettings>(spec.Tokenizer);
        var query = Shifted(spm, Texts[0]);
        for (var i = 1; i < Texts.Length; i++)
        {
            int[] ids = [0, .. query, 2, 2, .. Shifted(spm, Texts[i]), 2];
            Assert.Equal(1 / (1 + Math.Exp(-model.Logit(ids, new int[ids.Length]))), scored.Scores[i - 1], 5);
        }

        Assert.Equal(query.Length + 3, encoder.QueryTokens(Texts[0]));
    }

    [Fact]
    public void An_xlm_roberta_folder_without_its_sentencepiece_model_is_refused_saying_where_it_comes_from()
    {
        var (folder, _) = CrossEncoderFolder("no-model-file", withModelFile: false);

        var refusal = Assert.Throws<ModelFolderException>(() => EncoderFolder.Open(folder)).Message;

        Assert.Contains("sentencepiece.bpe.model", refusal, StringComparison.Ordinal);
    }

    public void Dispose() => _root.Dispose();
}
