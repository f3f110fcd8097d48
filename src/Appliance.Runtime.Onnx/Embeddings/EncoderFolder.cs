using System.Text.Json;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Runtime.Onnx.Embeddings;

/// <summary>
/// Reads an encoder model folder as Hugging Face and sentence-transformers write it (optimum's ONNX export of an
/// embedding model or a cross-encoder): config.json, model.onnx (or onnx/model.onnx), a WordPiece tokenizer, and for an
/// embedding model modules.json with its Pooling module. Everything it reads is checked against manifest.json first, and
/// anything it cannot serve faithfully is refused, naming the file and the setting.
/// </summary>
public static class EncoderFolder
{
    public const string ConfigFileName = "config.json";
    public const string ModulesFileName = "modules.json";
    private const string SentenceConfigFileName = "sentence_bert_config.json";
    private const string TokenizerConfigFileName = "tokenizer_config.json";
    private static readonly string[] ModelFiles = ["model.onnx", "onnx/model.onnx"];

    /// <summary>
    /// A folder with a Hugging Face config.json and no genai_config.json: what an encoder export holds (a generative
    /// model folder always has genai_config.json).
    /// </summary>
    public static bool IsEncoder(string folder) =>
        Directory.Exists(folder)
        && !File.Exists(Path.Combine(folder, GenAiConfig.FileName))
        && File.Exists(Path.Combine(folder, ConfigFileName));

    /// <summary>What an encoder folder serves, from its config.json alone (nothing verified): null when it cannot tell.</summary>
    public static EncoderTask? TaskOf(string folder)
    {
        try
        {
            using var config = ReadJson(folder, ConfigFileName);
            return config is null ? null : TaskOf(folder, config.RootElement);
        }
        catch (Exception unreadable) when (unreadable is ModelFolderException or IOException or UnauthorizedAccessException)
        {
            return null; // the load that follows says what is wrong with the folder; naming its kind must not stop the start
        }
    }

    public static EncoderSpec Open(string folder, EncoderSettings? settings = null)
    {
        settings ??= new EncoderSettings();
        if (!Directory.Exists(folder))
        {
            throw new ModelFolderException($"{folder}: model folder does not exist.");
        }

        var manifest = ModelManifest.Verify(folder); // every file present is listed and matches
        using var config = ReadJson(folder, ConfigFileName) ?? throw new ModelFolderException($"{folder}: no {ConfigFileName}.");
        var modelFile = ModelFiles.FirstOrDefault(f => File.Exists(Path.Combine(folder, f)))
            ?? throw new ModelFolderException($"{folder}: no model.onnx (or onnx/model.onnx); export the model with optimum (`optimum-cli export onnx`).");
        var task = TaskOf(folder, config.RootElement);
        var modelType = config.RootElement.TryGetProperty("model_type", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString() : null;
        var tokenizer = WordPieceFiles.Read(folder, modelType);
        var pooling = task == EncoderTask.Embedding ? PoolingOf(folder, settings.Pooling) : EncoderPooling.Cls;
        var maxTokens = MaxTokensOf(folder, config.RootElement, settings.MaxTokens);
        var sigmoid = task == EncoderTask.Reranking && SigmoidScores(folder, config.RootElement);
        return new EncoderSpec(folder, Path.Combine(folder, modelFile), task, pooling, maxTokens, tokenizer, manifest.Digest, sigmoid);
    }

    /// <summary>
    /// The activation sentence-transformers' CrossEncoder applies to a one-label model: its config.json's
    /// sentence_transformers.activation_fn (or the older sbert_ce_default_activation_function), a sigmoid when it names none.
    /// </summary>
    private static bool SigmoidScores(string folder, JsonElement config)
    {
        var named = config.TryGetProperty("sentence_transformers", out var st) && st.ValueKind == JsonValueKind.Object
            && st.TryGetProperty("activation_fn", out var fn) && fn.ValueKind == JsonValueKind.String ? fn.GetString()
            : config.TryGetProperty("sbert_ce_default_activation_function", out var old) && old.ValueKind == JsonValueKind.String ? old.GetString()
            : null;
        return named switch
        {
            null or "torch.nn.modules.activation.Sigmoid" => true,
            "torch.nn.modules.linear.Identity" => false,
            _ => throw new ModelFolderException($"{folder}: {ConfigFileName} names the activation {named}; a cross-encoder's scores are served through a sigmoid or as they are (Identity)."),
        };
    }

    /// <summary>A *ForSequenceClassification with one label scores pairs; a bare encoder (BertModel, or none named) embeds.</summary>
    private static EncoderTask TaskOf(string folder, JsonElement config)
    {
        var architectures = config.TryGetProperty("architectures", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().Where(a => a.ValueKind == JsonValueKind.String).Select(a => a.GetString()!).ToList()
            : [];
        var architecture = architectures.FirstOrDefault() ?? string.Empty;
        if (architecture.EndsWith("ForSequenceClassification", StringComparison.Ordinal))
        {
            var labels = config.TryGetProperty("id2label", out var names) && names.ValueKind == JsonValueKind.Object ? names.EnumerateObject().Count()
                : config.TryGetProperty("num_labels", out var count) && count.TryGetInt32(out var n) ? n
                : 2; // transformers' default
            return labels == 1
                ? EncoderTask.Reranking
                : throw new ModelFolderException($"{folder}: {ConfigFileName} names {architecture} with {labels} labels; only a cross-encoder with one label (a relevance score) can rerank.");
        }

        // The export of an embedding model is the bare encoder whatever head its checkpoint names (all-mpnet-base-v2's
        // says MPNetForMaskedLM, some BERT ones BertForPreTraining).
        if (architecture.Length > 0 && !new[] { "Model", "ForMaskedLM", "ForPreTraining" }.Any(end => architecture.EndsWith(end, StringComparison.Ordinal)))
        {
            throw new ModelFolderException($"{folder}: {ConfigFileName} names {architecture}; an encoder folder serves a sentence-embedding model (BertModel and the like) or a cross-encoder (*ForSequenceClassification). A generative model needs genai_config.json (onnxruntime-genai's model builder).");
        }

        return EncoderTask.Embedding;
    }

    /// <summary>The Pooling module sentence-transformers' modules.json lists, or the administrator's choice.</summary>
    private static EncoderPooling PoolingOf(string folder, string setting)
    {
        EncoderPooling? chosen = setting switch
        {
            "mean" => EncoderPooling.Mean,
            "cls" => EncoderPooling.Cls,
            "auto" => null,
            _ => throw new ModelFolderException($"Pooling '{setting}' is not one of auto, mean, cls."),
        };

        // modules.json is read even when the setting names the pooling: a module the export does not hold is refused all the same.
        using var modules = ReadJson(folder, ModulesFileName);
        if (modules is null)
        {
            return chosen ?? throw new ModelFolderException(
                $"{folder}: no {ModulesFileName} (sentence-transformers' description of the model), so how token states become one vector is unknown; "
                + "set Models:<id>:Pooling to mean or cls, as the model's card says.");
        }

        if (modules.RootElement.ValueKind != JsonValueKind.Array)
        {
            throw new ModelFolderException($"{folder}: {ModulesFileName} must be a list of modules.");
        }

        EncoderPooling? pooling = null;
        foreach (var module in modules.RootElement.EnumerateArray())
        {
            var type = module.TryGetProperty("type", out var t) ? t.GetString() ?? string.Empty : string.Empty;
            var kind = type[(type.LastIndexOf('.') + 1)..];
            switch (kind)
            {
                case "Transformer" or "Normalize":
                    break; // the export itself; vectors are always normalised
                case "Pooling" when chosen is not null:
                    pooling = chosen; // the administrator's choice
                    break;
                case "Pooling":
                    var path = module.TryGetProperty("path", out var p) ? p.GetString() ?? string.Empty : string.Empty;
                    pooling = PoolingModule(folder, Path.Combine(path, ConfigFileName).Replace('\\', '/'));
                    break;
                default:
                    throw new ModelFolderException($"{folder}: {ModulesFileName} lists a {type} module, which an ONNX export of the encoder does not hold; only Transformer, Pooling and Normalize can be served.");
            }
        }

        return pooling ?? chosen ?? throw new ModelFolderException($"{folder}: {ModulesFileName} lists no Pooling module; set Models:<id>:Pooling to mean or cls.");
    }

    private static EncoderPooling PoolingModule(string folder, string relativePath)
    {
        using var document = ReadJson(folder, relativePath) ?? throw new ModelFolderException($"{folder}: {ModulesFileName} names a Pooling module whose {relativePath} is missing.");
        var modes = document.RootElement.EnumerateObject()
            .Where(p => p.Name.StartsWith("pooling_mode_", StringComparison.Ordinal) && p.Value.ValueKind == JsonValueKind.True)
            .Select(p => p.Name["pooling_mode_".Length..])
            .ToList();
        return modes switch
        {
            ["mean_tokens"] => EncoderPooling.Mean,
            ["cls_token"] => EncoderPooling.Cls,
            _ => throw new ModelFolderException($"{folder}: {relativePath} asks for pooling {(modes.Count == 0 ? "none" : string.Join(" + ", modes))}; only mean_tokens or cls_token alone can be served."),
        };
    }

    /// <summary>
    /// sentence-transformers' max_seq_length, else the tokenizer's model_max_length, else the position table's length;
    /// never more than the position table holds. The administrator may only lower it.
    /// </summary>
    private static int MaxTokensOf(string folder, JsonElement config, int? setting)
    {
        var positions = config.TryGetProperty("max_position_embeddings", out var p) && p.TryGetInt32(out var n) && n > 0 ? n : (int?)null;
        if (config.TryGetProperty("model_type", out var type) && type.GetString() is "roberta" or "xlm-roberta" or "camembert" or "mpnet" && positions is > 2)
        {
            positions -= 2; // RoBERTa's (and MPNet's) position ids start after the padding index
        }

        int? declared = null;
        foreach (var (file, key) in new[] { (SentenceConfigFileName, "max_seq_length"), (TokenizerConfigFileName, "model_max_length") })
        {
            using var document = ReadJson(folder, file);
            if (document is not null && document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty(key, out var value)
                && value.TryGetInt64(out var length) && length is > 0 and < 1_000_000) // transformers writes 1e30 for "no limit"
            {
                declared = (int)length;
                break;
            }
        }

        var model = Math.Min(declared ?? positions ?? 512, positions ?? int.MaxValue);
        if (setting is { } asked)
        {
            return asked <= model ? asked : throw new ModelFolderException($"{folder}: ContextLength {asked} is more than the model's {model} tokens.");
        }

        return model;
    }

    internal static JsonDocument? ReadJson(string folder, string relativePath)
    {
        var path = Path.Combine(folder, relativePath);
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException exception)
        {
            throw new ModelFolderException($"{path}: not valid JSON: {exception.Message}", exception);
        }
    }
}
