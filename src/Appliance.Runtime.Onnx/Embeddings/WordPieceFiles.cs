using System.Text.Json;
using Appliance.Runtime.Onnx.Models;

namespace Appliance.Runtime.Onnx.Embeddings;

/// <summary>
/// The tokenizer of an encoder folder: XLM-RoBERTa's SentencePiece model (sentencepiece.bpe.model) in a folder of that
/// family; otherwise WordPiece, from tokenizer.json when there is one (transformers prefers it), else vocab.txt with
/// tokenizer_config.json. Other kinds (RoBERTa's byte-level BPE) are refused by name rather than read wrong.
/// </summary>
internal static class WordPieceFiles
{
    private const string JsonFileName = "tokenizer.json";
    private const string VocabularyFileName = "vocab.txt";
    private const string ConfigFileName = "tokenizer_config.json";
    private const string SentencePieceFileName = "sentencepiece.bpe.model";

    public static EncoderTokenizerSettings Read(string folder, string? modelType)
    {
        using var tokenizerConfig = EncoderFolder.ReadJson(folder, ConfigFileName);
        var settings = tokenizerConfig?.RootElement is { ValueKind: JsonValueKind.Object } c ? c : default(JsonElement?);
        using var json = EncoderFolder.ReadJson(folder, JsonFileName);
        var jsonKind = json?.RootElement is { ValueKind: JsonValueKind.Object } root && root.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.Object
            && m.TryGetProperty("type", out var t) ? t.GetString() : null;
        if (IsXlmRoberta(modelType, settings) || jsonKind == "Unigram")
        {
            return XlmRoberta(folder, modelType, settings, jsonKind);
        }

        if (json is not null)
        {
            return FromTokenizerJson(folder, json.RootElement, settings);
        }

        var vocabulary = Path.Combine(folder, VocabularyFileName);
        if (!File.Exists(vocabulary))
        {
            throw new ModelFolderException($"{folder}: no tokenizer; an encoder folder needs {JsonFileName}, or {VocabularyFileName} with {ConfigFileName}.");
        }

        var lines = File.ReadAllLines(vocabulary);
        // transformers' BertTokenizer: do_lower_case defaults to true, strip_accents (unset) follows it.
        var lowerCase = Flag(settings, "do_lower_case") ?? true;
        return Checked(folder, new WordPieceSettings(
            lines,
            lowerCase,
            Flag(settings, "strip_accents") ?? lowerCase,
            Token(settings, "cls_token") ?? "[CLS]",
            Token(settings, "sep_token") ?? "[SEP]",
            Token(settings, "unk_token") ?? "[UNK]",
            Token(settings, "pad_token") ?? "[PAD]"));
    }

    private static bool IsXlmRoberta(string? modelType, JsonElement? settings) =>
        modelType == "xlm-roberta"
        || (settings is { } s && s.TryGetProperty("tokenizer_class", out var name) && name.GetString() is "XLMRobertaTokenizer" or "XLMRobertaTokenizerFast");

    /// <summary>
    /// XLM-RoBERTa's tokenizer from its SentencePiece model. Its tokenizer.json (a Unigram with a compiled normalizer)
    /// is not read: the model file holds the same pieces and normalization, which Microsoft.ML.Tokenizers applies.
    /// </summary>
    private static XlmRobertaSettings XlmRoberta(string folder, string? modelType, JsonElement? settings, string? jsonKind)
    {
        if (!IsXlmRoberta(modelType, settings))
        {
            throw new ModelFolderException($"{folder}: a Unigram tokenizer of model type '{modelType}'; of the SentencePiece tokenizers only XLM-RoBERTa's (model_type xlm-roberta) is served.");
        }

        if (jsonKind is not (null or "Unigram"))
        {
            throw new ModelFolderException($"{folder}: an XLM-RoBERTa model whose {JsonFileName} holds a {jsonKind} tokenizer, not XLM-RoBERTa's Unigram.");
        }

        var model = Path.Combine(folder, SentencePieceFileName);
        return File.Exists(model)
            ? new XlmRobertaSettings(model)
            : throw new ModelFolderException(
                $"{folder}: an XLM-RoBERTa tokenizer is read from {SentencePieceFileName}, which the folder lacks; copy it from the model's "
                + $"repository (transformers' save_pretrained writes it beside {JsonFileName} only when it loaded the slow tokenizer).");
    }

    private static WordPieceSettings FromTokenizerJson(string folder, JsonElement root, JsonElement? settings)
    {
        var path = Path.Combine(folder, JsonFileName);
        var model = root.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.Object ? m : throw new ModelFolderException($"{path}: no 'model'.");
        var type = model.TryGetProperty("type", out var t) ? t.GetString() : null;
        if (type != "WordPiece")
        {
            throw new ModelFolderException(
                $"{path}: a {type ?? "untyped"} tokenizer. Embedding and reranking models are served with WordPiece tokenizers (BERT, DistilBERT, "
                + "MPNet and their kin: bge-*-en, e5-*-v2, gte, all-MiniLM, ms-marco cross-encoders) and XLM-RoBERTa's (bge-m3, multilingual-e5, "
                + "bge-reranker-v2-m3); RoBERTa's byte-level BPE is not yet.");
        }

        var vocab = model.TryGetProperty("vocab", out var v) && v.ValueKind == JsonValueKind.Object
            ? v.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32(), StringComparer.Ordinal)
            : throw new ModelFolderException($"{path}: 'model.vocab' must be an object.");
        var pieces = new string[vocab.Count];
        foreach (var (piece, id) in vocab)
        {
            if (id < 0 || id >= pieces.Length || pieces[id] is not null)
            {
                throw new ModelFolderException($"{path}: the vocabulary's ids must run from 0 to {pieces.Length - 1} without gaps; '{piece}' has {id}.");
            }

            pieces[id] = piece;
        }

        var (lowerCase, stripAccents) = Normalizer(path, root);
        var (cls, sep, roberta) = PostProcessor(path, root);
        return Checked(folder, new WordPieceSettings(
            pieces,
            lowerCase,
            stripAccents,
            cls ?? Token(settings, "cls_token") ?? "[CLS]",
            sep ?? Token(settings, "sep_token") ?? "[SEP]",
            model.TryGetProperty("unk_token", out var unk) && unk.GetString() is { } u ? u : Token(settings, "unk_token") ?? "[UNK]",
            Token(settings, "pad_token") ?? (vocab.ContainsKey("<pad>") ? "<pad>" : "[PAD]"),
            roberta));
    }

    /// <summary>BertNormalizer's lowercase and strip_accents (null follows lowercase), or none at all.</summary>
    private static (bool LowerCase, bool StripAccents) Normalizer(string path, JsonElement root)
    {
        if (!root.TryGetProperty("normalizer", out var normalizer) || normalizer.ValueKind == JsonValueKind.Null)
        {
            return (false, false);
        }

        var type = normalizer.TryGetProperty("type", out var t) ? t.GetString() : null;
        if (type != "BertNormalizer")
        {
            throw new ModelFolderException($"{path}: a {type} normalizer; WordPiece tokenizers are read with BertNormalizer or none.");
        }

        var lowerCase = normalizer.TryGetProperty("lowercase", out var l) && l.ValueKind == JsonValueKind.True;
        var strip = normalizer.TryGetProperty("strip_accents", out var s) && s.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? s.ValueKind == JsonValueKind.True
            : lowerCase;
        return (lowerCase, strip);
    }

    /// <summary>The tokens the post-processor puts around a text: [CLS] ... [SEP] (BERT) or &lt;s&gt; ... &lt;/s&gt; (MPNet).</summary>
    private static (string? Cls, string? Sep, bool Roberta) PostProcessor(string path, JsonElement root)
    {
        if (!root.TryGetProperty("post_processor", out var processor) || processor.ValueKind == JsonValueKind.Null)
        {
            return (null, null, false);
        }

        var type = processor.TryGetProperty("type", out var t) ? t.GetString() : null;
        switch (type)
        {
            case "BertProcessing" or "RobertaProcessing":
                return (First(processor, "cls"), First(processor, "sep"), type == "RobertaProcessing");
            case "TemplateProcessing" when processor.TryGetProperty("single", out var single) && single.ValueKind == JsonValueKind.Array:
                var steps = single.EnumerateArray().ToList();
                var special = steps.Select(s => s.TryGetProperty("SpecialToken", out var token) && token.TryGetProperty("id", out var id) ? id.GetString() : null).ToList();
                if (steps.Count == 3 && special[0] is not null && special[1] is null && special[2] is not null)
                {
                    // A pair as BERT's: one separator between the texts (a template with two is RoBERTa's).
                    var pair = processor.TryGetProperty("pair", out var p) && p.ValueKind == JsonValueKind.Array ? p.GetArrayLength() : 5;
                    return (special[0], special[2], pair > 5);
                }

                break;
        }

        throw new ModelFolderException($"{path}: a {type} post-processor that does not put one token before a text and one after it, as BERT's does.");
    }

    private static string? First(JsonElement processor, string name) =>
        processor.TryGetProperty(name, out var pair) && pair.ValueKind == JsonValueKind.Array && pair.GetArrayLength() > 0 ? pair[0].GetString() : null;

    private static WordPieceSettings Checked(string folder, WordPieceSettings settings)
    {
        var known = settings.Vocabulary.ToHashSet(StringComparer.Ordinal);
        foreach (var token in new[] { settings.ClassificationToken, settings.SeparatorToken, settings.UnknownToken })
        {
            if (!known.Contains(token))
            {
                throw new ModelFolderException($"{folder}: the tokenizer's special token '{token}' is not in its vocabulary.");
            }
        }

        return known.Contains(settings.PaddingToken) ? settings : settings with { PaddingToken = settings.UnknownToken };
    }

    private static bool? Flag(JsonElement? settings, string name) =>
        settings is { } s && s.TryGetProperty(name, out var value) && value.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? value.ValueKind == JsonValueKind.True
            : null;

    /// <summary>A special token as tokenizer_config.json writes it: a string, or {"content": ...}.</summary>
    private static string? Token(JsonElement? settings, string name) =>
        settings is { } s && s.TryGetProperty(name, out var value)
            ? value.ValueKind == JsonValueKind.String ? value.GetString()
            : value.ValueKind == JsonValueKind.Object && value.TryGetProperty("content", out var content) ? content.GetString()
            : null
            : null;
}
