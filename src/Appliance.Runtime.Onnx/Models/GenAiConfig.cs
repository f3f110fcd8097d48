using System.Text.Json;

namespace Appliance.Runtime.Onnx.Models;

/// <summary>Input names of a decoder export; KV names are patterns with %d for the layer.</summary>
public sealed record DecoderInputNames(string InputIds, string AttentionMask, string PositionIds, string PastKey, string PastValue);

/// <summary>Output names of a decoder export; KV names are patterns with %d for the layer.</summary>
public sealed record DecoderOutputNames(string Logits, string PresentKey, string PresentValue);

/// <summary>The <c>model.decoder</c> section of genai_config.json.</summary>
public sealed record DecoderConfig(
    string FileName,
    int HeadSize,
    int HiddenSize,
    int Heads,
    int KvHeads,
    int Layers,
    DecoderInputNames Inputs,
    DecoderOutputNames Outputs)
{
    /// <summary>
    /// <c>model.decoder.session_options</c> as written: scalar entries as strings, and each provider's options from
    /// <c>provider_options</c> (a list of one-key objects such as <c>{"cuda": {"enable_cuda_graph": "0"}}</c>).
    /// </summary>
    public DecoderSessionOptions SessionOptions { get; init; } = DecoderSessionOptions.Empty;
}

/// <summary>The session options a model folder asks for; the runner decides which it honours (and says which not).</summary>
public sealed record DecoderSessionOptions(
    IReadOnlyDictionary<string, string> Entries,
    IReadOnlyList<(string Provider, IReadOnlyDictionary<string, string> Options)> Providers)
{
    public static DecoderSessionOptions Empty { get; } = new(new Dictionary<string, string>(), []);

    /// <summary>ONNX Runtime session configuration entries given as a <c>config_entries</c> object.</summary>
    public IReadOnlyDictionary<string, string> ConfigEntries { get; init; } = new Dictionary<string, string>();
}

/// <summary>The <c>search</c> section: generation defaults shipped with the model.</summary>
public sealed record SearchDefaults(
    bool PastPresentShareBuffer,
    int? MaxLength,
    bool DoSample,
    int TopK,
    float TopP,
    float Temperature,
    float RepetitionPenalty);

/// <summary>onnxruntime-genai's genai_config.json, the part the appliance uses.</summary>
public sealed record GenAiConfig(
    string ModelType,
    DecoderConfig Decoder,
    int ContextLength,
    int VocabularySize,
    IReadOnlyList<int> EosTokenIds,
    int? BosTokenId,
    int PadTokenId,
    SearchDefaults Search)
{
    public const string FileName = "genai_config.json";

    /// <summary>Sections of onnxruntime-genai's multi-component models (vision, speech, encoders) beside the decoder.</summary>
    private static readonly string[] ComponentSections = ["vision", "speech", "embedding", "encoder", "joiner", "vad", "mtp", "draft", "pipeline"];

    /// <summary>Model types onnxruntime-genai runs as several models (vision-language, speech, encoder-decoder).</summary>
    private static readonly string[] MultiComponentTypes =
        ["phi3v", "phi4mm", "whisper", "qwen2_5_vl", "qwen3_vl", "qwen3_5", "fara", "marian-ssru", "decoder-pipeline", "nemotron_speech"];

    public static GenAiConfig Load(string path)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (Exception exception) when (exception is IOException or JsonException or UnauthorizedAccessException)
        {
            throw new ModelFolderException($"{path}: cannot read the model configuration: {exception.Message}", exception);
        }

        using (document)
        {
            var reader = new ConfigReader(path);
            var model = reader.Object(document.RootElement, "model");
            var decoder = reader.Object(model, "decoder", "model.");
            var inputs = reader.Object(decoder, "inputs", "model.decoder.");
            var outputs = reader.Object(decoder, "outputs", "model.decoder.");
            var eos = reader.TokenIds(model, "eos_token_id", "model.");
            var search = document.RootElement.TryGetProperty("search", out var s) ? s : default;
            var type = reader.String(model, "type", "model.");
            RefuseMultiComponent(path, model, type);
            return new GenAiConfig(
                type,
                new DecoderConfig(
                    reader.String(decoder, "filename", "model.decoder."),
                    reader.Int(decoder, "head_size", "model.decoder."),
                    reader.Int(decoder, "hidden_size", "model.decoder."),
                    reader.Int(decoder, "num_attention_heads", "model.decoder."),
                    reader.OptionalInt(decoder, "num_key_value_heads") ?? reader.Int(decoder, "num_attention_heads", "model.decoder."),
                    reader.Int(decoder, "num_hidden_layers", "model.decoder."),
                    new DecoderInputNames(
                        reader.OptionalString(inputs, "input_ids") ?? "input_ids",
                        reader.OptionalString(inputs, "attention_mask") ?? "attention_mask",
                        reader.OptionalString(inputs, "position_ids") ?? "position_ids",
                        reader.OptionalString(inputs, "past_key_names") ?? "past_key_values.%d.key",
                        reader.OptionalString(inputs, "past_value_names") ?? "past_key_values.%d.value"),
                    new DecoderOutputNames(
                        reader.OptionalString(outputs, "logits") ?? "logits",
                        reader.OptionalString(outputs, "present_key_names") ?? "present.%d.key",
                        reader.OptionalString(outputs, "present_value_names") ?? "present.%d.value"))
                {
                    SessionOptions = reader.SessionOptions(decoder),
                },
                reader.Int(model, "context_length", "model."),
                reader.Int(model, "vocab_size", "model."),
                eos,
                reader.OptionalTokenId(model, "bos_token_id"),
                reader.OptionalTokenId(model, "pad_token_id") ?? eos[0],
                new SearchDefaults(
                    search.ValueKind == JsonValueKind.Object && reader.OptionalBool(search, "past_present_share_buffer") == true,
                    search.ValueKind == JsonValueKind.Object ? reader.OptionalInt(search, "max_length") : null,
                    search.ValueKind == JsonValueKind.Object && reader.OptionalBool(search, "do_sample") == true,
                    search.ValueKind == JsonValueKind.Object ? reader.OptionalInt(search, "top_k") ?? 0 : 0,
                    search.ValueKind == JsonValueKind.Object ? reader.OptionalFloat(search, "top_p") ?? 1f : 1f,
                    search.ValueKind == JsonValueKind.Object ? reader.OptionalFloat(search, "temperature") ?? 1f : 1f,
                    search.ValueKind == JsonValueKind.Object ? reader.OptionalFloat(search, "repetition_penalty") ?? 1f : 1f));
        }
    }

    private static void RefuseMultiComponent(string path, JsonElement model, string type)
    {
        var components = ComponentSections.Where(c => model.TryGetProperty(c, out var section) && section.ValueKind == JsonValueKind.Object).ToList();
        if (components.Count > 0 || MultiComponentTypes.Contains(type, StringComparer.OrdinalIgnoreCase))
        {
            var what = components.Count > 0 ? $"has the components {string.Join(", ", components)} beside the decoder" : "is a multi-component model type";
            throw new ModelFolderException(
                $"{path}: model type '{type}' {what}; the appliance serves single-decoder language models only (a text-only export of the same model works).");
        }
    }

    /// <summary>Reads typed values and names the file and key in every error.</summary>
    private sealed class ConfigReader(string path)
    {
        public JsonElement Object(JsonElement parent, string name, string prefix = "") =>
            parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Object
                ? value
                : throw Missing(prefix + name, "an object");

        public string String(JsonElement parent, string name, string prefix) =>
            OptionalString(parent, name) ?? throw Missing(prefix + name, "a string");

        public int Int(JsonElement parent, string name, string prefix) =>
            OptionalInt(parent, name) ?? throw Missing(prefix + name, "a positive integer");

        public string? OptionalString(JsonElement parent, string name) =>
            parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

        public int? OptionalInt(JsonElement parent, string name) =>
            parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var i) && i > 0 ? i : null;

        public float? OptionalFloat(JsonElement parent, string name) =>
            parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number ? value.GetSingle() : null;

        public bool? OptionalBool(JsonElement parent, string name) =>
            parent.TryGetProperty(name, out var value) && value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : null;

        public int? OptionalTokenId(JsonElement parent, string name) =>
            parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var i) && i >= 0 ? i : null;

        /// <summary>eos_token_id is a number or a list of numbers.</summary>
        public int[] TokenIds(JsonElement parent, string name, string prefix)
        {
            if (parent.TryGetProperty(name, out var value))
            {
                if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var single) && single >= 0)
                {
                    return [single];
                }

                if (value.ValueKind == JsonValueKind.Array && value.GetArrayLength() > 0 &&
                    value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out var id) && id >= 0))
                {
                    return [.. value.EnumerateArray().Select(e => e.GetInt32())];
                }
            }

            throw Missing(prefix + name, "a token id or a non-empty list of token ids");
        }

        /// <summary>session_options: scalars become strings (as onnxruntime-genai reads them); provider_options per provider.</summary>
        public DecoderSessionOptions SessionOptions(JsonElement decoder)
        {
            if (!decoder.TryGetProperty("session_options", out var options) || options.ValueKind != JsonValueKind.Object)
            {
                return DecoderSessionOptions.Empty;
            }

            var entries = new Dictionary<string, string>(StringComparer.Ordinal);
            var configEntries = new Dictionary<string, string>(StringComparer.Ordinal);
            var providers = new List<(string, IReadOnlyDictionary<string, string>)>();
            foreach (var property in options.EnumerateObject())
            {
                if (property.Name == "config_entries" && property.Value.ValueKind == JsonValueKind.Object)
                {
                    foreach (var entry in property.Value.EnumerateObject().Where(e => Scalar(e.Value) is not null))
                    {
                        configEntries[entry.Name] = Scalar(entry.Value)!;
                    }
                }
                else if (property.Name == "provider_options")
                {
                    if (property.Value.ValueKind != JsonValueKind.Array)
                    {
                        throw Missing("model.decoder.session_options.provider_options", "a list of objects");
                    }

                    foreach (var provider in property.Value.EnumerateArray().Where(p => p.ValueKind == JsonValueKind.Object).SelectMany(p => p.EnumerateObject()))
                    {
                        var settings = provider.Value.ValueKind == JsonValueKind.Object
                            ? provider.Value.EnumerateObject().Where(o => Scalar(o.Value) is not null).ToDictionary(o => o.Name, o => Scalar(o.Value)!, StringComparer.Ordinal)
                            : [];
                        providers.Add((provider.Name, settings));
                    }
                }
                else if (Scalar(property.Value) is { } value)
                {
                    entries[property.Name] = value;
                }
            }

            return new DecoderSessionOptions(entries, providers) { ConfigEntries = configEntries };
        }

        private static string? Scalar(JsonElement value) => value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Number => value.GetRawText(),
            JsonValueKind.True => "true",
            JsonValueKind.False => "false",
            _ => null,
        };

        private ModelFolderException Missing(string key, string expected) =>
            new($"{path}: '{key}' must be {expected}.");
    }
}
