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

    /// <summary>Operators as "domain:type" ("" for the default domain), e.g. "com.microsoft:GroupQueryAttention".</summary>
    public bool Uses(string domain, string opType) => Operators.Contains($"{domain}:{opType}");

    public static OnnxGraphSignature Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var reader = new ProtoReader(stream);
        var inputs = new Dictionary<string, TensorSignature>(StringComparer.Ordinal);
        var outputs = new Dictionary<string, TensorSignature>(StringComparer.Ordinal);
        var operators = new HashSet<string>(StringComparer.Ordinal);
        var graph = new GraphParts(inputs, outputs, operators, new HashSet<string>(StringComparer.Ordinal), new HashSet<string>(StringComparer.Ordinal));
        var sawGraph = false;
        while (reader.NextField(stream.Length) is { } field)
        {
            if (field.Number == ModelGraph && field.IsLengthDelimited)
            {
                sawGraph = true;
                ReadGraph(reader, reader.Position + reader.ReadLength(), graph);
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

        return new OnnxGraphSignature(inputs, outputs, operators, graph.ExternalFiles);
    }

    private static void ReadGraph(ProtoReader reader, long end, GraphParts graph)
    {
        while (reader.NextField(end) is { } field)
        {
            switch (field.Number)
            {
                case GraphNode when field.IsLengthDelimited:
                    graph.Operators.Add(ReadNode(reader, reader.Position + reader.ReadLength()));
                    break;
                case GraphInitializer when field.IsLengthDelimited:
                    ReadInitializer(reader, reader.Position + reader.ReadLength(), graph);
                    break;
                case GraphInput or GraphOutput when field.IsLengthDelimited:
                    var value = ReadValueInfo(reader, reader.Position + reader.ReadLength());
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
        while (reader.NextField(end) is { } field)
        {
            if (field.Number == TensorName && field.IsLengthDelimited)
            {
                graph.Initializers.Add(reader.ReadString());
            }
            else if (field.Number == TensorExternalData && field.IsLengthDelimited)
            {
                var entryEnd = reader.Position + reader.ReadLength();
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
            else
            {
                reader.Skip(field);
            }
        }
    }

    private static string ReadNode(ProtoReader reader, long end)
    {
        string opType = string.Empty, domain = string.Empty;
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
            else
            {
                reader.Skip(field);
            }
        }

        // "ai.onnx" and "" are the same default domain.
        return $"{(domain == "ai.onnx" ? string.Empty : domain)}:{opType}";
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
                var typeEnd = reader.Position + reader.ReadLength();
                while (reader.NextField(typeEnd) is { } typeField)
                {
                    if (typeField.Number == TypeTensor && typeField.IsLengthDelimited)
                    {
                        (type, dims) = ReadTensorType(reader, reader.Position + reader.ReadLength());
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
                var shapeEnd = reader.Position + reader.ReadLength();
                while (reader.NextField(shapeEnd) is { } dim)
                {
                    if (dim.Number == ShapeDim && dim.IsLengthDelimited)
                    {
                        dims.Add(ReadDimension(reader, reader.Position + reader.ReadLength()));
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
        HashSet<string> ExternalFiles);
}
