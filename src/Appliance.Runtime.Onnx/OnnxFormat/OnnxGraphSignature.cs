using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.OnnxFormat;

/// <summary>A graph input or output: its element type and dimensions (null where the dimension is symbolic).</summary>
public sealed record TensorSignature(string Name, TensorElementType ElementType, IReadOnlyList<long?> Dimensions);

/// <summary>
/// What a model file declares without loading it: graph inputs, outputs and the operators it uses (domain and type).
/// Read by streaming over the protobuf and seeking past initializers, so a file of many gigabytes costs a few reads;
/// placement needs the KV element type before any session exists.
/// </summary>
public sealed record OnnxGraphSignature(
    IReadOnlyDictionary<string, TensorSignature> Inputs,
    IReadOnlyDictionary<string, TensorSignature> Outputs,
    IReadOnlySet<string> Operators)
{
    // Field numbers from onnx.proto.
    private const int ModelGraph = 7;
    private const int GraphNode = 1;
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

    /// <summary>Operators as "domain:type" ("" for the default domain), e.g. "com.microsoft:GroupQueryAttention".</summary>
    public bool Uses(string domain, string opType) => Operators.Contains($"{domain}:{opType}");

    public static OnnxGraphSignature Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var reader = new ProtoReader(stream);
        var inputs = new Dictionary<string, TensorSignature>(StringComparer.Ordinal);
        var outputs = new Dictionary<string, TensorSignature>(StringComparer.Ordinal);
        var operators = new HashSet<string>(StringComparer.Ordinal);
        var sawGraph = false;
        while (reader.NextField(stream.Length) is { } field)
        {
            if (field.Number == ModelGraph && field.IsLengthDelimited)
            {
                sawGraph = true;
                ReadGraph(reader, reader.Position + reader.ReadLength(), inputs, outputs, operators);
            }
            else
            {
                reader.Skip(field);
            }
        }

        return sawGraph
            ? new OnnxGraphSignature(inputs, outputs, operators)
            : throw new InvalidDataException($"{path} holds no ONNX graph.");
    }

    private static void ReadGraph(ProtoReader reader, long end, Dictionary<string, TensorSignature> inputs, Dictionary<string, TensorSignature> outputs, HashSet<string> operators)
    {
        while (reader.NextField(end) is { } field)
        {
            switch (field.Number)
            {
                case GraphNode when field.IsLengthDelimited:
                    operators.Add(ReadNode(reader, reader.Position + reader.ReadLength()));
                    break;
                case GraphInput or GraphOutput when field.IsLengthDelimited:
                    var value = ReadValueInfo(reader, reader.Position + reader.ReadLength());
                    (field.Number == GraphInput ? inputs : outputs)[value.Name] = value;
                    break;
                default:
                    reader.Skip(field); // initializers and everything else: seek past
                    break;
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
}
