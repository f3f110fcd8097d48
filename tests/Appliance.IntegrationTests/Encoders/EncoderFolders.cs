using System.Text.Json;
using System.Text.Json.Nodes;
using Appliance.Runtime.Onnx.Embeddings;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.IntegrationTests.Encoders;

/// <summary>
/// Encoder folders as an administrator brings them (optimum's export of a sentence-transformers model): the packaged
/// all-MiniLM-L6-v2 weights laid out with config.json, a tokenizer (vocab.txt, or a WordPiece tokenizer.json),
/// modules.json and the Pooling module's config.
/// </summary>
internal static class EncoderFolders
{
    /// <summary>An embedding folder over the MiniLM weights with the given pooling and length.</summary>
    public static string SentenceTransformers(string minilm, string folder, string pooling, int maxSeqLength, bool tokenizerJson)
    {
        Directory.CreateDirectory(Path.Combine(folder, "1_Pooling"));
        File.Copy(Path.Combine(minilm, SentenceEmbedder.ModelFileName), Path.Combine(folder, "model.onnx"));
        var vocabulary = File.ReadAllLines(Path.Combine(minilm, SentenceEmbedder.VocabularyFileName));
        if (tokenizerJson)
        {
            File.WriteAllText(Path.Combine(folder, "tokenizer.json"), WordPieceJson(vocabulary).ToJsonString());
        }
        else
        {
            File.WriteAllLines(Path.Combine(folder, "vocab.txt"), vocabulary);
        }

        Write(folder, "config.json", new { architectures = new[] { "BertModel" }, model_type = "bert", max_position_embeddings = 512, hidden_size = 384 });
        Write(folder, "tokenizer_config.json", new { do_lower_case = true, model_max_length = 512 });
        Write(folder, "sentence_bert_config.json", new { max_seq_length = maxSeqLength, do_lower_case = false });
        Write(folder, "modules.json", new object[]
        {
            new { idx = 0, name = "0", path = string.Empty, type = "sentence_transformers.models.Transformer" },
            new { idx = 1, name = "1", path = "1_Pooling", type = "sentence_transformers.models.Pooling" },
            new { idx = 2, name = "2", path = "2_Normalize", type = "sentence_transformers.models.Normalize" },
        });
        Write(folder, "1_Pooling/config.json", new Dictionary<string, object>
        {
            ["word_embedding_dimension"] = 384,
            ["pooling_mode_cls_token"] = pooling == "cls",
            ["pooling_mode_mean_tokens"] = pooling == "mean",
            ["pooling_mode_max_tokens"] = false,
            ["pooling_mode_mean_sqrt_len_tokens"] = false,
        });
        ModelManifest.Create(folder);
        return folder;
    }

    /// <summary>A BERT tokenizer.json as transformers writes it for an uncased WordPiece vocabulary.</summary>
    public static JsonObject WordPieceJson(IReadOnlyList<string> vocabulary)
    {
        var vocab = new JsonObject();
        for (var i = 0; i < vocabulary.Count; i++)
        {
            vocab[vocabulary[i]] = i;
        }

        JsonNode Special(string id, int type) => new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
        JsonNode Sequence(string id, int type) => new JsonObject { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
        return new JsonObject
        {
            ["version"] = "1.0",
            ["normalizer"] = new JsonObject { ["type"] = "BertNormalizer", ["clean_text"] = true, ["handle_chinese_chars"] = true, ["strip_accents"] = null, ["lowercase"] = true },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "BertPreTokenizer" },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(Special("[CLS]", 0), Sequence("A", 0), Special("[SEP]", 0)),
                ["pair"] = new JsonArray(Special("[CLS]", 0), Sequence("A", 0), Special("[SEP]", 0), Sequence("B", 1), Special("[SEP]", 1)),
            },
            ["decoder"] = new JsonObject { ["type"] = "WordPiece", ["prefix"] = "##", ["cleanup"] = true },
            ["model"] = new JsonObject { ["type"] = "WordPiece", ["unk_token"] = "[UNK]", ["continuing_subword_prefix"] = "##", ["max_input_chars_per_word"] = 100, ["vocab"] = vocab },
        };
    }

    private static void Write(string folder, string relativePath, object value) =>
        File.WriteAllText(Path.Combine(folder, relativePath), JsonSerializer.Serialize(value));
}
