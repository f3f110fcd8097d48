using Google.Protobuf;

namespace Appliance.Runtime.Onnx.OnnxFormat;

/// <summary>
/// Writes one protobuf message field by field. Nested messages are written whole into their parent, so each
/// message's length is known when the parent writes it.
/// </summary>
internal sealed class ProtoMessage
{
    private readonly MemoryStream _buffer = new();
    private readonly CodedOutputStream _output;

    public ProtoMessage() => _output = new CodedOutputStream(_buffer, leaveOpen: true);

    public ProtoMessage String(int field, string value)
    {
        _output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _output.WriteString(value);
        return this;
    }

    public ProtoMessage Int64(int field, long value)
    {
        _output.WriteTag(field, WireFormat.WireType.Varint);
        _output.WriteInt64(value);
        return this;
    }

    public ProtoMessage Int32(int field, int value)
    {
        _output.WriteTag(field, WireFormat.WireType.Varint);
        _output.WriteInt32(value);
        return this;
    }

    public ProtoMessage Float(int field, float value)
    {
        _output.WriteTag(field, WireFormat.WireType.Fixed32);
        _output.WriteFloat(value);
        return this;
    }

    public ProtoMessage Bytes(int field, ReadOnlyMemory<byte> value)
    {
        _output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        _output.WriteBytes(UnsafeByteOperations.UnsafeWrap(value));
        return this;
    }

    public ProtoMessage PackedInt64(int field, IReadOnlyCollection<long> values)
    {
        if (values.Count == 0)
        {
            return this;
        }

        var packed = new ProtoMessage();
        foreach (var value in values)
        {
            packed._output.WriteInt64(value);
        }

        return Bytes(field, packed.ToArray());
    }

    public ProtoMessage Message(int field, ProtoMessage child) => Bytes(field, child.ToArray());

    public byte[] ToArray()
    {
        _output.Flush();
        return _buffer.ToArray();
    }

    /// <summary>Writes the message to a stream without an extra copy of its bytes.</summary>
    public void WriteTo(Stream destination)
    {
        _output.Flush();
        _buffer.Position = 0;
        _buffer.CopyTo(destination);
    }
}
