using Appliance.Runtime.Onnx.Models;
using Appliance.Runtime.Onnx.OnnxFormat;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// The element types a decoder export uses at its boundary, read from the model (never assumed): token ids and mask
/// int32 or int64, KV cache and logits float32, float16 or bfloat16. The one place that decides whether the runner
/// can drive a model; anything else is refused at load, naming the tensor and its type.
/// </summary>
public sealed record DecoderSignature(
    TensorElementType IdsType,
    TensorElementType MaskType,
    TensorElementType? PositionIdsType,
    TensorElementType KvType,
    TensorElementType LogitsType)
{
    private static readonly TensorElementType[] IndexTypes = [TensorElementType.Int64, TensorElementType.Int32];
    private static readonly TensorElementType[] FloatTypes = [TensorElementType.Float, TensorElementType.Float16, TensorElementType.BFloat16];

    public int KvElementSize => ElementSize(KvType);

    public int LogitsElementSize => ElementSize(LogitsType);

    public bool HasPositionIds => PositionIdsType is not null;

    /// <summary>Whether the logits cover every new position ([batch, sequence, vocabulary]), not only the last one.</summary>
    public bool LogitsEveryPosition { get; init; } = true;

    /// <summary>Reads the signature from a loaded session's metadata.</summary>
    public static DecoderSignature FromSession(InferenceSession session, DecoderConfig decoder, string folder) =>
        Resolve(Signatures(session.InputMetadata), Signatures(session.OutputMetadata), decoder, folder);

    /// <summary>Reads the signature from the model file alone (for placement, before any session exists).</summary>
    public static DecoderSignature FromFile(string modelPath, DecoderConfig decoder, string folder)
    {
        OnnxGraphSignature graph;
        try
        {
            graph = OnnxGraphSignature.Read(modelPath);
        }
        catch (Exception exception) when (exception is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            throw new ModelFolderException($"{folder}: cannot read the model file {Path.GetFileName(modelPath)}: {exception.Message}", exception);
        }

        foreach (var file in graph.ExternalDataFiles)
        {
            var directory = Path.GetFullPath(Path.GetDirectoryName(modelPath)!);
            var full = Path.GetFullPath(Path.Combine(directory, file));
            if (Path.IsPathRooted(file) || !full.StartsWith(directory + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                throw new ModelFolderException($"{folder}: the model's weights name the external file '{file}', outside the model's folder.");
            }

            if (!File.Exists(full))
            {
                throw new ModelFolderException($"{folder}: the model's weights are in '{file}', which is missing.");
            }
        }

        return Resolve(graph.Inputs, graph.Outputs, decoder, folder);
    }

    public static DecoderSignature Resolve(
        IReadOnlyDictionary<string, TensorSignature> inputs,
        IReadOnlyDictionary<string, TensorSignature> outputs,
        DecoderConfig decoder,
        string folder)
    {
        var check = new Checker(folder, decoder);
        if (!inputs.ContainsKey(decoder.Inputs.InputIds) && inputs.ContainsKey("inputs_embeds"))
        {
            // The builder's exclude_embeds export (a multimodal model's text decoder): its embeddings come from elsewhere.
            throw check.Refuse("the model takes 'inputs_embeds' (embeddings computed outside the decoder) instead of token ids; the runner feeds " +
                $"'{decoder.Inputs.InputIds}': export the decoder with its embedding (without the model builder's exclude_embeds)");
        }

        var ids = check.Type(inputs, decoder.Inputs.InputIds, "input", IndexTypes, "int64 or int32");
        var mask = check.Type(inputs, decoder.Inputs.AttentionMask, "input", IndexTypes, "int64 or int32");
        TensorElementType? positions = inputs.ContainsKey(decoder.Inputs.PositionIds)
            ? check.Type(inputs, decoder.Inputs.PositionIds, "input", IndexTypes, "int64 or int32")
            : null;
        foreach (var name in new[] { decoder.Inputs.InputIds, decoder.Inputs.AttentionMask, decoder.Inputs.PositionIds }.Where(inputs.ContainsKey))
        {
            check.Rank(inputs[name], 2, "[batch, sequence]");
        }

        var fed = new HashSet<string>(StringComparer.Ordinal) { decoder.Inputs.InputIds, decoder.Inputs.AttentionMask, decoder.Inputs.PositionIds };
        fed.UnionWith(LayerNames(decoder.Inputs.PastKey, decoder.Layers));
        fed.UnionWith(LayerNames(decoder.Inputs.PastValue, decoder.Layers));
        if (inputs.Keys.FirstOrDefault(name => !fed.Contains(name)) is { } extra)
        {
            // An input the runner does not feed would fail every request (e.g. Optimum's use_cache_branch, or more
            // layers than genai_config.json declares).
            throw check.Refuse($"the model takes input '{extra}' ({OnnxTypes.Name(inputs[extra].ElementType)}), which the runner does not feed; it feeds " +
                $"{decoder.Inputs.InputIds}, {decoder.Inputs.AttentionMask}, {decoder.Inputs.PositionIds} and {decoder.Layers} layers of past keys and values");
        }

        var kvNames = LayerNames(decoder.Inputs.PastKey, decoder.Layers).Concat(LayerNames(decoder.Inputs.PastValue, decoder.Layers))
            .Select(n => (Name: n, Kind: "input", Tensors: inputs))
            .Concat(LayerNames(decoder.Outputs.PresentKey, decoder.Layers).Concat(LayerNames(decoder.Outputs.PresentValue, decoder.Layers))
                .Select(n => (Name: n, Kind: "output", Tensors: outputs)))
            .ToList();
        var kv = check.Type(kvNames[0].Tensors, kvNames[0].Name, kvNames[0].Kind, FloatTypes, "float32, float16 or bfloat16");
        foreach (var (name, kind, tensors) in kvNames)
        {
            var type = check.Type(tensors, name, kind, FloatTypes, "float32, float16 or bfloat16");
            if (type != kv)
            {
                throw check.Refuse($"KV {kind} '{name}' is {OnnxTypes.Name(type)} but '{kvNames[0].Name}' is {OnnxTypes.Name(kv)}; every KV tensor must have one type");
            }

            check.KvShape(tensors[name]);
        }

        var logits = check.Type(outputs, decoder.Outputs.Logits, "output", FloatTypes, "float32, float16 or bfloat16");
        check.LogitsShape(outputs[decoder.Outputs.Logits]);
        return new DecoderSignature(ids, mask, positions, kv, logits) { LogitsEveryPosition = outputs[decoder.Outputs.Logits].Dimensions[1] is not 1 };
    }

    public static int ElementSize(TensorElementType type) => type switch
    {
        TensorElementType.Float => 4,
        TensorElementType.Float16 or TensorElementType.BFloat16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a KV or logits type"),
    };

    public static string[] LayerNames(string pattern, int layers) =>
        [.. Enumerable.Range(0, layers).Select(i => pattern.Replace("%d", i.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal))];

    private static Dictionary<string, TensorSignature> Signatures(IReadOnlyDictionary<string, NodeMetadata> metadata) =>
        metadata.Where(m => m.Value.IsTensor).ToDictionary(
            m => m.Key,
            m => new TensorSignature(m.Key, m.Value.ElementDataType, [.. m.Value.Dimensions.Select(d => d >= 0 ? (long?)d : null)]),
            StringComparer.Ordinal);

    /// <summary>Names the folder, the tensor and what was found in every refusal.</summary>
    private sealed class Checker(string folder, DecoderConfig decoder)
    {
        public TensorElementType Type(IReadOnlyDictionary<string, TensorSignature> tensors, string name, string kind, TensorElementType[] allowed, string expected)
        {
            if (!tensors.TryGetValue(name, out var tensor))
            {
                throw Refuse($"the model has no {kind} '{name}' (named in genai_config.json); its {kind}s are {string.Join(", ", tensors.Keys.Order(StringComparer.Ordinal).Take(12))}");
            }

            return allowed.Contains(tensor.ElementType)
                ? tensor.ElementType
                : throw Refuse($"{kind} '{name}' is {OnnxTypes.Name(tensor.ElementType)}; the runner drives {expected} there");
        }

        /// <summary>[batch, kv_heads, sequence, head_size]; fixed dimensions must agree with genai_config.json.</summary>
        public void KvShape(TensorSignature tensor)
        {
            var dims = tensor.Dimensions;
            if (dims.Count != 4)
            {
                throw Refuse($"KV tensor '{tensor.Name}' has {dims.Count} dimensions; the runner drives [batch, kv_heads, sequence, head_size]");
            }

            if ((dims[1] is { } heads && heads != decoder.KvHeads) || (dims[3] is { } size && size != decoder.HeadSize))
            {
                throw Refuse($"KV tensor '{tensor.Name}' is [{Describe(dims)}] but genai_config.json says {decoder.KvHeads} KV heads of size {decoder.HeadSize}");
            }
        }

        public void Rank(TensorSignature tensor, int rank, string shape)
        {
            if (tensor.Dimensions.Count != rank)
            {
                throw Refuse($"input '{tensor.Name}' has {tensor.Dimensions.Count} dimensions; the runner feeds {shape}");
            }
        }

        public void LogitsShape(TensorSignature tensor)
        {
            if (tensor.Dimensions.Count != 3)
            {
                throw Refuse($"output '{tensor.Name}' has {tensor.Dimensions.Count} dimensions; the runner drives [batch, sequence, vocabulary]");
            }
        }

        public ModelFolderException Refuse(string reason) => new($"{folder}: {reason}.");

        private static string Describe(IReadOnlyList<long?> dims) =>
            string.Join(", ", dims.Select(d => d?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"));
    }
}
