using System.Runtime.InteropServices;

namespace Appliance.Runtime.Onnx.OnnxFormat;

/// <summary>
/// Builds an ONNX model (ModelProto) node by node and writes it as protobuf. Field numbers follow onnx.proto:
/// ModelProto{ir_version=1, producer_name=2, graph=7, opset_import=8}, GraphProto{node=1, name=2, initializer=5,
/// input=11, output=12}, NodeProto{input=1, output=2, name=3, op_type=4, attribute=5, domain=7},
/// AttributeProto{name=1, f=2, i=3, ints=8, type=20}, TensorProto{dims=1, data_type=2, name=8, raw_data=9,
/// external_data=13 (StringStringEntryProto{key=1, value=2}), data_location=14},
/// ValueInfoProto{name=1, type=2}, TypeProto{tensor_type=1}, Tensor{elem_type=1, shape=2}, Dimension{dim_value=1, dim_param=2}.
/// </summary>
internal sealed class OnnxGraphBuilder(string graphName)
{
    private const long IrVersion = 8;
    private const int AttributeFloat = 1;
    private const int AttributeInt = 2;
    private const int AttributeInts = 7;
    private const int AttributeTensor = 4;

    private readonly List<ProtoMessage> _nodes = [];
    private readonly List<ProtoMessage> _initializers = [];
    private readonly List<ProtoMessage> _inputs = [];
    private readonly List<ProtoMessage> _outputs = [];
    private readonly SortedSet<string> _domains = new(StringComparer.Ordinal);
    private Stream? _externalData;
    private string _externalLocation = string.Empty;
    private int _externalThreshold;
    private int _nextName;

    /// <summary>
    /// Writes initializers of at least <paramref name="thresholdBytes"/> to <paramref name="data"/> (the file named
    /// <paramref name="location"/> beside the model) instead of into the model, as ONNX external data.
    /// </summary>
    public void UseExternalData(Stream data, string location, int thresholdBytes = 1024)
    {
        _externalData = data;
        _externalLocation = location;
        _externalThreshold = thresholdBytes;
    }

    public void Input(string name, OnnxDataType type, params object[] dims) => _inputs.Add(ValueInfo(name, type, dims));

    public void Output(string name, OnnxDataType type, params object[] dims) => _outputs.Add(ValueInfo(name, type, dims));

    public string Initializer(string name, ReadOnlySpan<float> values, params long[] dims) =>
        AddInitializer(name, OnnxDataType.Float, MemoryMarshal.AsBytes(values).ToArray(), dims);

    /// <summary>An initializer of any element type from its little-endian bytes.</summary>
    public string RawInitializer(string name, OnnxDataType type, byte[] raw, params long[] dims) =>
        AddInitializer(name, type, raw, dims);

    public string Int64Constant(long[] values, params long[] dims) =>
        AddInitializer($"const_{_nextName++}", OnnxDataType.Int64, MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), dims);

    public string FloatConstant(float value) =>
        AddInitializer($"const_{_nextName++}", OnnxDataType.Float, BitConverter.GetBytes(value), []);

    /// <summary>Adds a node with one output and returns the output's name.</summary>
    public string Node(string opType, string[] inputs, params OnnxAttribute[] attributes) =>
        NodeWithOutputs(opType, inputs, [$"{opType.ToLowerInvariant()}_{_nextName++}"], attributes)[0];

    /// <summary>Adds a node whose outputs have the given names (graph outputs must keep their exact names).</summary>
    public string[] NodeWithOutputs(string opType, string[] inputs, string[] outputs, params OnnxAttribute[] attributes) =>
        NodeInDomain(string.Empty, opType, inputs, outputs, attributes);

    /// <summary>Adds a node of another operator domain (for example com.microsoft contrib operators).</summary>
    public string[] NodeInDomain(string domain, string opType, string[] inputs, string[] outputs, params OnnxAttribute[] attributes)
    {
        if (domain.Length > 0)
        {
            _domains.Add(domain);
        }

        var node = new ProtoMessage();
        foreach (var input in inputs)
        {
            node.String(1, input);
        }

        foreach (var output in outputs)
        {
            node.String(2, output);
        }

        node.String(3, $"n{_nextName++}_{opType}").String(4, opType);
        foreach (var attribute in attributes)
        {
            node.Message(5, Attribute(attribute));
        }

        if (domain.Length > 0)
        {
            node.String(7, domain);
        }

        _nodes.Add(node);
        return outputs;
    }

    /// <summary>Writes the ModelProto with the default (ai.onnx) opset and version 1 of every other domain used.</summary>
    public void WriteTo(Stream destination, int opsetVersion, string producer)
    {
        var graph = new ProtoMessage();
        _nodes.ForEach(n => graph.Message(1, n));
        graph.String(2, graphName);
        _initializers.ForEach(i => graph.Message(5, i));
        _inputs.ForEach(i => graph.Message(11, i));
        _outputs.ForEach(o => graph.Message(12, o));

        var header = new ProtoMessage().Int64(1, IrVersion).String(2, producer)
            .Message(8, new ProtoMessage().String(1, string.Empty).Int64(2, opsetVersion));
        foreach (var domain in _domains)
        {
            header.Message(8, new ProtoMessage().String(1, domain).Int64(2, 1));
        }

        header.WriteTo(destination);

        // The graph is written as field 7 straight into the stream: tag, length, body.
        var body = graph.ToArray();
        var tag = new ProtoMessage().Bytes(7, body);
        tag.WriteTo(destination);
    }

    private string AddInitializer(string name, OnnxDataType type, byte[] raw, long[] dims)
    {
        var tensor = new ProtoMessage().PackedInt64(1, dims).Int32(2, (int)type).String(8, name);
        if (_externalData is not null && raw.Length >= _externalThreshold)
        {
            var offset = _externalData.Position;
            _externalData.Write(raw);
            tensor.Message(13, new ProtoMessage().String(1, "location").String(2, _externalLocation))
                .Message(13, new ProtoMessage().String(1, "offset").String(2, offset.ToString(System.Globalization.CultureInfo.InvariantCulture)))
                .Message(13, new ProtoMessage().String(1, "length").String(2, raw.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)))
                .Int32(14, 1);
        }
        else
        {
            tensor.Bytes(9, raw);
        }

        _initializers.Add(tensor);
        return name;
    }

    private static ProtoMessage ValueInfo(string name, OnnxDataType type, object[] dims)
    {
        var shape = new ProtoMessage();
        foreach (var dim in dims)
        {
            var dimension = dim switch
            {
                string symbol => new ProtoMessage().String(2, symbol),
                int value => new ProtoMessage().Int64(1, value),
                long value => new ProtoMessage().Int64(1, value),
                _ => throw new ArgumentException($"Dimension {dim} must be a number or a name."),
            };
            shape.Message(1, dimension);
        }

        var tensorType = new ProtoMessage().Int32(1, (int)type).Message(2, shape);
        var typeProto = new ProtoMessage().Message(1, tensorType);
        return new ProtoMessage().String(1, name).Message(2, typeProto);
    }

    private static ProtoMessage Attribute(OnnxAttribute attribute)
    {
        var message = new ProtoMessage().String(1, attribute.Name);
        return attribute switch
        {
            { Ints: { } ints } => message.PackedInt64(8, ints).Int32(20, AttributeInts),
            { Float: { } f } => message.Float(2, f).Int32(20, AttributeFloat),
            { Int: { } i } => message.Int64(3, i).Int32(20, AttributeInt),
            { Int64Tensor: { } t } => message.Message(5, new ProtoMessage().Int32(2, (int)OnnxDataType.Int64).Bytes(9, BitConverter.GetBytes(t))).Int32(20, AttributeTensor),
            _ => throw new ArgumentException($"Attribute {attribute.Name} has no value."),
        };
    }
}

/// <summary>A node attribute: exactly one of an integer, a float, a list of integers or a 0-D int64 tensor.</summary>
internal sealed record OnnxAttribute(string Name, long? Int = null, float? Float = null, long[]? Ints = null, long? Int64Tensor = null)
{
    /// <summary>A 0-D int64 tensor (as a Constant node's value), its bytes in raw_data: how the model builder writes its constants.</summary>
    public static OnnxAttribute Scalar(string name, long value) => new(name, Int64Tensor: value);

    public static OnnxAttribute Integer(string name, long value) => new(name, Int: value);

    public static OnnxAttribute Real(string name, float value) => new(name, Float: value);

    public static OnnxAttribute Integers(string name, params long[] values) => new(name, Ints: values);
}
