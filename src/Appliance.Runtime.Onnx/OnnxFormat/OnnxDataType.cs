namespace Appliance.Runtime.Onnx.OnnxFormat;

/// <summary>TensorProto.DataType values from the ONNX specification.</summary>
internal enum OnnxDataType
{
    Float = 1,
    UInt8 = 2,
    Int32 = 6,
    Int64 = 7,
    Bool = 9,
    Float16 = 10,
    BFloat16 = 16,
}
