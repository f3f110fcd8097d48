using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.OnnxFormat;

/// <summary>ONNX element types by the names people know them by (TensorProto.DataType numbers).</summary>
public static class OnnxTypes
{
    public static string Name(TensorElementType type) => (int)type switch
    {
        0 => "undefined",
        1 => "float32",
        2 => "uint8",
        3 => "int8",
        4 => "uint16",
        5 => "int16",
        6 => "int32",
        7 => "int64",
        8 => "string",
        9 => "bool",
        10 => "float16",
        11 => "float64",
        12 => "uint32",
        13 => "uint64",
        14 => "complex64",
        15 => "complex128",
        16 => "bfloat16",
        17 => "float8e4m3fn",
        18 => "float8e4m3fnuz",
        19 => "float8e5m2",
        20 => "float8e5m2fnuz",
        21 => "uint4",
        22 => "int4",
        var other => $"type {other}",
    };
}
