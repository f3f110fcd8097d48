using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.OnnxFormat;

/// <summary>A graph input or output: its element type and dimensions (null where the dimension is symbolic).</summary>
public sealed record TensorSignature(string Name, TensorElementType ElementType, IReadOnlyList<long?> Dimensions);

/// <summary>
/// What a model file declares without loading it: the inputs a caller must feed (graph inputs that no initializer
/// backs; older exports list their weights as inputs too), outputs, the operators it uses (domain and type), and the
/// external data files its weights live in. Read by streaming over the protobuf and seeking past tensor data, so a
/// file of many gigabytes costs a few reads; placement needs the KV element type before any session exists.
/// </summary>
public sealed record OnnxGraphSignature(
    IReadOnlyDictionary<string, TensorSignature> Inputs,
    IReadOnlyDictionary<string, TensorSignature> Outputs,
    IReadOnlySet<string> Operators,
    IReadOnlySet<string> ExternalDataFiles)
{
    // Field numbers from onnx.proto.
    private const int ModelGraph = 7;
    private const int GraphNode = 1;
    private const int GraphInitializer = 5;
    private const int GraphInput = 11;
    private const int GraphOutput = 12;
    private const int NodeOpType = 4;
    private const int NodeDomain = 7;
    private const int ValueInfoName = 1;
    private const int ValueInfoType = 2;
    private const int TypeTensor = 1;
    private const int TensorElemType = 1;
    private const int TensorShape = 2;
    private const int ShapeDim = 1;
    private const int DimValue = 1;
    private const int TensorName = 8;
    private const int TensorExternalData = 13;
    private const int EntryKey = 1;
    private const int EntryValue = 2;

    private const int NodeInput = 1;
    private const int NodeOutput = 2;
    private const int NodeAttribute = 5;
    private const int AttributeName = 1;
    private const int AttributeInt = 3;
    private const int AttributeTensor = 5;
    private const int TensorDims = 1;
    private const int TensorDataType = 2;
    private const int TensorInt32Data = 5;
    private const int TensorInt64Data = 7;
    private const int TensorRawData = 9;
    private const int ElementInt32 = 6;
    private const int ElementInt64 = 7;

    /// <summary>
    /// Graph inputs whose width (dimension 1, taken with Shape and Gather) the graph compares with a constant
    /// (Greater), and that constant. The model builder's LongRoPE exports (Phi-3 128k, Phi-3.5, Phi-4-mini) choose their
    /// rotary cache so: attention_mask wider than the original context selects the long-context factors.
    /// </summary>
    public IReadOnlyDictionary<string, long> WidthThresholds { get; init; } = new Dictionary<string, long>();

    /// <summary>Operators as "domain:type" ("" for the default domain), e.g. "com.microsoft:GroupQueryAttention".</summary>
    public bool Uses(string domain, string opType) => Operators.Contains($"{domain}:{opType}");

    public static OnnxGraphSignature Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var reader = new ProtoReader(stream);
        var inputs = new Dictionary<string, TensorSignature>(StringComparer.Ordinal);
        var outputs = new Dictionary<string, TensorSignature>(StringComparer.Ordinal);
        var operators = new HashSet<string>(StringComparer.Ordinal);
        var graph = new GraphParts(inputs, outputs, operators, new HashSet<string>(StringComparer.Ordinal), new HashSet<string>(StringComparer.Ordinal), [], new Dictionary<string, long>(StringComparer.Ordinal));
        var sawGraph = false;
        while (reader.NextField(stream.Length) is { } field)
        {
            if (field.Number == ModelGraph && field.IsLengthDelimited)
            {
                sawGraph = true;
                ReadGraph(reader, reader.ReadEnd(), graph);
            }
            else
            {
                reader.Skip(field);
            }
        }

        if (!sawGraph)
        {
            throw new InvalidDataException($"{path} holds no ONNX graph.");
        }

        foreach (var weight in graph.Initializers)
        {
            inputs.Remove(weight); // an input with an initializer has a value already
        }

        return new OnnxGraphSignature(inputs, outputs, operators, graph.ExternalFiles) { WidthThresholds = WidthComparisons(graph) };
    }

    /// <summary>Greater(Gather(Shape(input), 1), constant), through casts and reshapes: the input's width compared.</summary>
    private static Dictionary<string, long> WidthComparisons(GraphParts graph)
    {
        var producers = new Dictionary<string, NodeFacts>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            foreach (var output in node.Outputs.Where(o => o.Length > 0))
            {
                producers.TryAdd(output, node);
                if (node.Constant is { } value)
                {
                    graph.Constants.TryAdd(output, value);
                }
            }
        }

        string Through(string name)
        {
            for (var hops = 0; hops < 16 && producers.TryGetValue(name, out var node) && node.Inputs.Count > 0 &&
                node.OpType is "Cast" or "Squeeze" or "Unsqueeze" or "Reshape" or "Identity" or "Flatten"; hops++)
            {
                name = node.Inputs[0];
            }

            return name;
        }

        var thresholds = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var greater in graph.Nodes.Where(n => n.OpType == "Greater" && n.Domain.Length == 0 && n.Inputs.Count == 2))
        {
            if (producers.TryGetValue(Through(greater.Inputs[0]), out var gather) && gather.OpType == "Gather" && gather.Inputs.Count == 2 &&
                graph.Constants.TryGetValue(Through(gather.Inputs[1]), out var axis) && axis == 1 &&
                producers.TryGetValue(Through(gather.Inputs[0]), out var shape) && shape.OpType == "Shape" && shape.Inputs.Count == 1 &&
                graph.Constants.TryGetValue(Through(greater.Inputs[1]), out var threshold))
            {
                thresholds.TryAdd(shape.Inputs[0], threshold);
            }
        }

        return thresholds;
    }

    private static void ReadGraph(ProtoReader reader, long end, GraphParts graph)
    {
        while (reader.NextField(end) is { } field)
        {
            switch (field.Number)
            {
                case GraphNode when field.IsLengthDelimited:
                    var node = ReadNode(reader, reader.ReadEnd());
                    graph.Operators.Add($"{node.Domain}:{node.OpType}");
                    graph.Nodes.Add(node);
                    break;
                case GraphInitializer when field.IsLengthDelimited:
                    ReadInitializer(reader, reader.ReadEnd(), graph);
                    break;
                case GraphInput or GraphOutput when field.IsLengthDelimited:
                    var value = ReadValueInfo(reader, reader.ReadEnd());
                    (field.Number == GraphInput ? graph.Inputs : graph.Outputs)[value.Name] = value;
                    break;
                default:
                    reader.Skip(field);
                    break;
            }
        }
    }

    /// <summary>A weight's name and, for external data, the file it lives in; its bytes are seeked past.</summary>
    private static void ReadInitializer(ProtoReader reader, long end, GraphParts graph)
    {
        var scalar = new ScalarReader();
        string? name = null;
        while (reader.NextField(end) is { } field)
        {
            if (field.Number == TensorName && field.IsLengthDelimited)
            {
                name = reader.ReadString();
                graph.Initializers.Add(name);
            }
            else if (field.Number == TensorExternalData && field.IsLengthDelimited)
            {
                var entryEnd = reader.ReadEnd();
                string? key = null, value = null;
                while (reader.NextField(entryEnd) is { } entry)
                {
                    if (entry.Number == EntryKey && entry.IsLengthDelimited)
                    {
                        key = reader.ReadString();
                    }
                    else if (entry.Number == EntryValue && entry.IsLengthDelimited)
                    {
                        value = reader.ReadString();
                    }
                    else
                    {
                        reader.Skip(entry);
                    }
                }

                if (key == "location" && value is not null)
                {
                    graph.ExternalFiles.Add(value);
                }
            }
            else if (!scalar.Read(reader, field))
            {
                reader.Skip(field);
            }
        }

        if (name is not null && scalar.Value is { } constant)
        {
            graph.Constants[name] = constant;
        }
    }

    private static NodeFacts ReadNode(ProtoReader reader, long end)
    {
        string opType = string.Empty, domain = string.Empty;
        List<string> inputs = [], outputs = [];
        long? constant = null;
        while (reader.NextField(end) is { } field)
        {
            if (field.Number == NodeOpType && field.IsLengthDelimited)
            {
                opType = reader.ReadString();
            }
            else if (field.Number == NodeDomain && field.IsLengthDelimited)
            {
                domain = reader.ReadString();
            }
            else if (field.Number is NodeInput or NodeOutput && field.IsLengthDelimited)
            {
                (field.Number == NodeInput ? inputs : outputs).Add(reader.ReadString());
            }
            else if (field.Number == NodeAttribute && field.IsLengthDelimited)
            {
                constant = ReadConstantAttribute(reader, reader.ReadEnd()) ?? constant;
            }
            else
            {
                reader.Skip(field);
            }
        }

        // "ai.onnx" and "" are the same default domain.
        domain = domain == "ai.onnx" ? string.Empty : domain;
        return new NodeFacts(opType, domain, inputs, outputs, opType == "Constant" && domain.Length == 0 ? constant : null);
    }

    /// <summary>A Constant node's integer: value_int, or value holding one int32/int64 element.</summary>
    private static long? ReadConstantAttribute(ProtoReader reader, long end)
    {
        string? name = null;
        long? integer = null;
        var tensor = new ScalarReader();
        while (reader.NextField(end) is { } field)
        {
            if (field.Number == AttributeName && field.IsLengthDelimited)
            {
                name = reader.ReadString();
            }
            else if (field.Number == AttributeInt && !field.IsLengthDelimited)
            {
                integer = (long)reader.ReadVarint();
            }
            else if (field.Number == AttributeTensor && field.IsLengthDelimited)
            {
                var tensorEnd = reader.ReadEnd();
                while (reader.NextField(tensorEnd) is { } part)
                {
                    if (!tensor.Read(reader, part))
                    {
                        reader.Skip(part);
                    }
                }
            }
            else
            {
                reader.Skip(field);
            }
        }

        return name switch
        {
            "value_int" => integer,
            "value" => tensor.Value,
            _ => null,
        };
    }

    private static TensorSignature ReadValueInfo(ProtoReader reader, long end)
    {
        var name = string.Empty;
        var type = (TensorElementType)0;
        List<long?> dims = [];
        while (reader.NextField(end) is { } field)
        {
            if (field.Number == ValueInfoName && field.IsLengthDelimited)
            {
                name = reader.ReadString();
            }
            else if (field.Number == ValueInfoType && field.IsLengthDelimited)
            {
                var typeEnd = reader.ReadEnd();
                while (reader.NextField(typeEnd) is { } typeField)
                {
                    if (typeField.Number == TypeTensor && typeField.IsLengthDelimited)
                    {
                        (type, dims) = ReadTensorType(reader, reader.ReadEnd());
                    }
                    else
                    {
                        reader.Skip(typeField);
                    }
                }
            }
            else
            {
                reader.Skip(field);
            }
        }

        return new TensorSignature(name, type, dims);
    }

    private static (TensorElementType Type, List<long?> Dims) ReadTensorType(ProtoReader reader, long end)
    {
        var type = (TensorElementType)0;
        var dims = new List<long?>();
        while (reader.NextField(end) is { } field)
        {
            if (field.Number == TensorElemType && !field.IsLengthDelimited)
            {
                type = (TensorElementType)reader.ReadVarint();
            }
            else if (field.Number == TensorShape && field.IsLengthDelimited)
            {
                var shapeEnd = reader.ReadEnd();
                while (reader.NextField(shapeEnd) is { } dim)
                {
                    if (dim.Number == ShapeDim && dim.IsLengthDelimited)
                    {
                        dims.Add(ReadDimension(reader, reader.ReadEnd()));
                    }
                    else
                    {
                        reader.Skip(dim);
                    }
                }
            }
            else
            {
                reader.Skip(field);
            }
        }

        return (type, dims);
    }

    private static long? ReadDimension(ProtoReader reader, long end)
    {
        long? value = null;
        while (reader.NextField(end) is { } field)
        {
            if (field.Number == DimValue && !field.IsLengthDelimited)
            {
                value = (long)reader.ReadVarint();
            }
            else
            {
                reader.Skip(field);
            }
        }

        return value;
    }

    private sealed record GraphParts(
        Dictionary<string, TensorSignature> Inputs,
        Dictionary<string, TensorSignature> Outputs,
        HashSet<string> Operators,
        HashSet<string> Initializers,
        HashSet<string> ExternalFiles,
        List<NodeFacts> Nodes,
        Dictionary<string, long> Constants);

    private sealed record NodeFacts(string OpType, string Domain, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, long? Constant);

    /// <summary>
    /// Collects a tensor's fields that make it a one-element int32/int64 constant; weights' data is never read (only
    /// fields of at most 16 bytes are).
    /// </summary>
    private sealed class ScalarReader
    {
        private long _elements = 1;
        private int _type;
        private long? _value;
        private int _values;

        public long? Value => _elements == 1 && _values == 1 && _type is ElementInt32 or ElementInt64 ? _value : null;

        /// <summary>Reads the field if it is one of a tensor's shape, type or integer data; false otherwise (not consumed).</summary>
        public bool Read(ProtoReader reader, ProtoField field)
        {
            switch (field.Number)
            {
                case TensorDims when !field.IsLengthDelimited:
                    _elements *= (long)reader.ReadVarint();
                    return true;
                case TensorDims:
                    var dimsEnd = reader.ReadEnd();
                    while (reader.Position < dimsEnd)
                    {
                        _elements *= (long)reader.ReadVarint();
                    }

                    return true;
                case TensorDataType when !field.IsLengthDelimited:
                    _type = (int)reader.ReadVarint();
                    return true;
                case TensorInt32Data or TensorInt64Data when !field.IsLengthDelimited:
                    _value = field.Number == TensorInt32Data ? (int)reader.ReadVarint() : (long)reader.ReadVarint();
                    _values++;
                    return true;
                case TensorInt32Data or TensorInt64Data or TensorRawData:
                    var length = reader.ReadLength();
                    if (length > 16)
                    {
                        reader.SkipBytes(length);
                        _values += 2; // more than one element: not a scalar
                        return true;
                    }

                    var bytes = reader.ReadExactly((int)length);
                    if (field.Number == TensorRawData)
                    {
                        _value = length == 8 ? BitConverter.ToInt64(bytes) : length == 4 ? BitConverter.ToInt32(bytes) : null;
                        _values += length is 4 or 8 ? 1 : 2;
                    }
                    else
                    {
                        var packed = new ProtoReader(new MemoryStream(bytes));
                        while (packed.Position < bytes.Length)
                        {
                            var raw = packed.ReadVarint();
                            _value = field.Number == TensorInt32Data ? (int)raw : (long)raw;
                            _values++;
                        }
                    }

                    return true;
                default:
                    return false;
            }
        }
    }
}
