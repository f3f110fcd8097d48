using System.Text.Json;
using System.Text.Json.Nodes;
using Appliance.Runtime.Onnx.Embeddings;
using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.Synthetic;
using Appliance.Tests.Common;

namespace Appliance.Runtime.Onnx.Tests.Embeddings;

/// <summary>
/// Encoder folders as optimum and sentence-transformers write them: what is read from them (task, pooling, length,
/// tokenizer), and what is refused by name instead of being served wrong.
/// </summary>
public sealed class EncoderFolderTests : IDisposable
{
    private static readonly string[] Vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", "."];

    private readonly TempFolder _root = new("encoder-folders");

    /// <summary>A cross-encoder folder (the synthetic one), then edited: files written, removed, the manifest made again.</summary>
    private string Folder(string name, Action<string>? edit = null)
    {
        var folder = _root.Combine(name);
        new SyntheticCrossEncoder(Vocabulary.Length).WriteFolder(folder, Vocabulary, maxPositions: 64);
        if (edit is not null)
        {
            File.Delete(Path.Combine(folder, ModelManifest.FileName));
            edit(folder);
            ModelManifest.Create(folder);
        }

        return folder;
    }

    /// <summary>An embedding folder: config.json naming BertModel, and sentence-transformers' modules with the given pooling.</summary>
    private string Embedding(string name, JsonObject? pooling = null, Action<string>? edit = null) => Folder(name, folder =>
    {
        Write(folder, "config.json", new JsonObject { ["architectures"] = new JsonArray("BertModel"), ["model_type"] = "bert", ["max_position_embeddings"] = 512 });
        Write(folder, "modules.json", new JsonArray(
            new JsonObject { ["path"] = string.Empty, ["type"] = "sentence_transformers.models.Transformer" },
            new JsonObject { ["path"] = "1_Pooling", ["type"] = "sentence_transformers.models.Pooling" },
            new JsonObject { ["path"] = "2_Normalize", ["type"] = "sentence_transformers.models.Normalize" }));
        Directory.CreateDirectory(Path.Combine(folder, "1_Pooling"));
        Write(folder, "1_Pooling/config.json", pooling ?? new JsonObject { ["pooling_mode_cls_token"] = true, ["pooling_mode_mean_tokens"] = false });
        edit?.Invoke(folder);
    });

    private static void Write(string folder, string relativePath, JsonNode json) => File.WriteAllText(Path.Combine(folder, relativePath), json.ToJsonString());

    private static JsonObject Read(string folder, string relativePath) => JsonNode.Parse(File.ReadAllText(Path.Combine(folder, relativePath)))!.AsObject();

    private static string Refusal(string folder, EncoderSettings? settings = null) =>
        Assert.Throws<ModelFolderException>(() => EncoderFolder.Open(folder, settings)).Message;

    [Fact]
    public void A_sequence_classifier_with_one_label_is_a_reranker_as_long_as_its_position_table()
    {
        var folder = Folder("reranker");

        var spec = EncoderFolder.Open(folder);

        Assert.True(EncoderFolder.IsEncoder(folder));
        Assert.Equal((EncoderTask.Reranking, 64), (spec.Task, spec.MaxTokens)); // tokenizer_config says 512, the table holds 64
        var tokenizer = Assert.IsType<WordPieceSettings>(spec.Tokenizer);
        Assert.Equal(("[CLS]", "[SEP]", true, true), (tokenizer.ClassificationToken, tokenizer.SeparatorToken, tokenizer.LowerCase, tokenizer.StripAccents));
        Assert.Equal(Vocabulary, tokenizer.Vocabulary);
        Assert.Equal(ModelManifest.Verify(folder).Digest, spec.Digest);
    }

    [Fact]
    public void A_classifier_with_several_labels_is_refused_as_no_reranker()
    {
        var folder = Folder("nli", f =>
        {
            var config = Read(f, "config.json");
            config["id2label"] = new JsonObject { ["0"] = "contradiction", ["1"] = "entailment", ["2"] = "neutral" };
            Write(f, "config.json", config);
        });

        Assert.Contains("3 labels", Refusal(folder), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, true)]
    [InlineData("torch.nn.modules.activation.Sigmoid", true)]
    [InlineData("torch.nn.modules.linear.Identity", false)]
    public void A_cross_encoders_scores_follow_the_activation_its_config_names(string? activation, bool sigmoid)
    {
        var folder = Folder($"activation-{sigmoid}-{activation?.Length}", f =>
        {
            var config = Read(f, "config.json");
            if (activation is not null)
            {
                config["sentence_transformers"] = new JsonObject { ["activation_fn"] = activation };
            }

            Write(f, "config.json", config);
        });

        Assert.Equal(sigmoid, EncoderFolder.Open(folder).SigmoidScores);
    }

    [Fact]
    public void The_older_activation_key_is_read_and_an_unknown_activation_refused()
    {
        var identity = Folder("old-key", f =>
        {
            var config = Read(f, "config.json");
            config["sbert_ce_default_activation_function"] = "torch.nn.modules.linear.Identity";
            Write(f, "config.json", config);
        });
        var tanh = Folder("tanh", f =>
        {
            var config = Read(f, "config.json");
            config["sentence_transformers"] = new JsonObject { ["activation_fn"] = "torch.nn.modules.activation.Tanh" };
            Write(f, "config.json", config);
        });

        Assert.False(EncoderFolder.Open(identity).SigmoidScores);
        Assert.Contains("Tanh", Refusal(tanh), StringComparison.Ordinal);
    }

    [Fact]
    public void An_mpnet_checkpoint_naming_its_masked_lm_head_embeds_and_its_positions_leave_out_the_padding_offset()
    {
        var folder = Embedding("mpnet", new JsonObject { ["pooling_mode_mean_tokens"] = true }, f =>
        {
            Write(f, "config.json", new JsonObject { ["architectures"] = new JsonArray("MPNetForMaskedLM"), ["model_type"] = "mpnet", ["max_position_embeddings"] = 514 });
            Write(f, "tokenizer_config.json", new JsonObject { ["do_lower_case"] = true });
        });

        var spec = EncoderFolder.Open(folder);

        Assert.Equal((EncoderTask.Embedding, 512), (spec.Task, spec.MaxTokens));
    }

    [Fact]
    public void A_pooling_setting_does_not_pass_over_a_module_the_export_does_not_hold()
    {
        var folder = Embedding("dense-override", edit: f =>
        {
            var modules = JsonNode.Parse(File.ReadAllText(Path.Combine(f, "modules.json")))!.AsArray();
            modules.Add(new JsonObject { ["path"] = "2_Dense", ["type"] = "sentence_transformers.models.Dense" });
            Write(f, "modules.json", modules);
        });

        Assert.Contains("Dense", Refusal(folder, new EncoderSettings("mean")), StringComparison.Ordinal);
        Assert.Equal(EncoderPooling.Mean, EncoderFolder.Open(Embedding("override"), new EncoderSettings("mean")).Pooling); // the module says cls
    }

    [Fact]
    public void A_generative_architecture_without_genai_config_is_refused_pointing_at_the_model_builder()
    {
        var folder = Folder("causal", f => Write(f, "config.json", new JsonObject { ["architectures"] = new JsonArray("LlamaForCausalLM"), ["model_type"] = "llama" }));

        Assert.Contains("genai_config.json", Refusal(folder), StringComparison.Ordinal);
    }

    [Fact]
    public void Pooling_comes_from_the_pooling_module_and_max_seq_length_from_sentence_transformers()
    {
        var cls = EncoderFolder.Open(Embedding("cls", edit: f => Write(f, "sentence_bert_config.json", new JsonObject { ["max_seq_length"] = 128 })));
        var mean = EncoderFolder.Open(Embedding("mean", new JsonObject { ["pooling_mode_mean_tokens"] = true }));

        Assert.Equal((EncoderTask.Embedding, EncoderPooling.Cls, 128), (cls.Task, cls.Pooling, cls.MaxTokens));
        Assert.Equal((EncoderPooling.Mean, 512), (mean.Pooling, mean.MaxTokens));
    }

    [Fact]
    public void Without_modules_json_the_administrator_names_the_pooling()
    {
        var folder = Embedding("bare", edit: f => File.Delete(Path.Combine(f, "modules.json")));

        Assert.Contains("Models:<id>:Pooling", Refusal(folder), StringComparison.Ordinal);
        Assert.Equal(EncoderPooling.Mean, EncoderFolder.Open(folder, new EncoderSettings("mean")).Pooling);
        Assert.Equal(EncoderPooling.Cls, EncoderFolder.Open(folder, new EncoderSettings("cls")).Pooling);
    }

    [Theory]
    [InlineData("max_tokens")]
    [InlineData("mean_sqrt_len_tokens")]
    public void A_pooling_mode_the_appliance_does_not_compute_is_refused_by_name(string mode)
    {
        var folder = Embedding(mode, new JsonObject { [$"pooling_mode_{mode}"] = true });

        Assert.Contains(mode, Refusal(folder), StringComparison.Ordinal);
    }

    [Fact]
    public void A_module_an_onnx_export_does_not_hold_is_refused_by_name()
    {
        var folder = Embedding("dense", edit: f =>
        {
            var modules = JsonNode.Parse(File.ReadAllText(Path.Combine(f, "modules.json")))!.AsArray();
            modules.Add(new JsonObject { ["path"] = "2_Dense", ["type"] = "sentence_transformers.models.Dense" });
            Write(f, "modules.json", modules);
        });

        Assert.Contains("sentence_transformers.models.Dense", Refusal(folder), StringComparison.Ordinal);
    }

    [Fact]
    public void A_context_length_may_lower_the_models_length_but_not_raise_it()
    {
        var folder = Folder("lengths");

        Assert.Equal(32, EncoderFolder.Open(folder, new EncoderSettings(MaxTokens: 32)).MaxTokens);
        Assert.Contains("more than the model's 64", Refusal(folder, new EncoderSettings(MaxTokens: 65)), StringComparison.Ordinal);
    }

    [Fact]
    public void A_wordpiece_tokenizer_json_is_read_with_its_casing_and_special_tokens()
    {
        var folder = Folder("mpnet-like", f =>
        {
            File.Delete(Path.Combine(f, "vocab.txt"));
            var vocab = new JsonObject();
            string[] pieces = ["<s>", "<pad>", "</s>", "<unk>", .. Vocabulary[5..]];
            for (var i = 0; i < pieces.Length; i++)
            {
                vocab[pieces[i]] = i;
            }

            Write(f, "tokenizer.json", new JsonObject
            {
                ["normalizer"] = new JsonObject { ["type"] = "BertNormalizer", ["lowercase"] = false, ["strip_accents"] = null },
                ["post_processor"] = new JsonObject { ["type"] = "RobertaProcessing", ["sep"] = new JsonArray("</s>", 2), ["cls"] = new JsonArray("<s>", 0) },
                ["model"] = new JsonObject { ["type"] = "WordPiece", ["unk_token"] = "<unk>", ["vocab"] = vocab },
            });
        });

        var tokenizer = Assert.IsType<WordPieceSettings>(EncoderFolder.Open(folder).Tokenizer);

        Assert.Equal(("<s>", "</s>", "<unk>", "<pad>"), (tokenizer.ClassificationToken, tokenizer.SeparatorToken, tokenizer.UnknownToken, tokenizer.PaddingToken));
        Assert.Equal((false, false, true), (tokenizer.LowerCase, tokenizer.StripAccents, tokenizer.RobertaPairs));
    }

    [Theory]
    [InlineData("Unigram", "XLM-RoBERTa")]
    [InlineData("BPE", "RoBERTa")]
    public void A_tokenizer_json_of_another_kind_is_refused_naming_what_is_served(string kind, string named)
    {
        var folder = Folder(kind, f => Write(f, "tokenizer.json", new JsonObject { ["model"] = new JsonObject { ["type"] = kind } }));

        var refusal = Refusal(folder);

        Assert.Contains($"a {kind} tokenizer", refusal, StringComparison.Ordinal);
        Assert.Contains(named, refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void A_special_token_missing_from_the_vocabulary_is_refused()
    {
        var folder = Folder("no-cls", f => File.WriteAllLines(Path.Combine(f, "vocab.txt"), Vocabulary.Where(p => p != "[CLS]")));

        Assert.Contains("'[CLS]'", Refusal(folder), StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_the_manifest_does_not_list_refuses_the_folder()
    {
        var folder = Folder("unlisted");
        File.WriteAllText(Path.Combine(folder, "modules.json"), "[]");

        Assert.Contains("'modules.json'", Refusal(folder), StringComparison.Ordinal);
    }

    [Fact]
    public void A_generative_folder_is_no_encoder()
    {
        var folder = _root.Combine("decoder");
        SyntheticModelFolder.Write(SyntheticModelSpec.Tiny, folder);

        Assert.False(EncoderFolder.IsEncoder(folder));
        Assert.False(EncoderFolder.IsEncoder(_root.Combine("missing")));
    }

    public void Dispose() => _root.Dispose();
}
