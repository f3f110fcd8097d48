using System.Text;

namespace Appliance.Runtime.Onnx.OnnxFormat;

/// <summary>A protobuf field's number and wire type.</summary>
internal readonly record struct ProtoField(int Number, int WireType)
{
    public bool IsLengthDelimited => WireType == 2;
}

/// <summary>
/// Reads protobuf fields from a seekable stream one at a time, seeking over the ones the caller skips: enough to
/// walk a large ONNX file's structure without reading its weights.
/// </summary>
internal sealed class ProtoReader(Stream stream)
{
    public long Position => stream.Position;

    /// <summary>The next field before <paramref name="end"/>, or null at the end.</summary>
    public ProtoField? NextField(long end)
    {
        if (stream.Position >= end)
        {
            return null;
        }

        var tag = ReadVarint();
        return new ProtoField((int)(tag >> 3), (int)(tag & 7));
    }

    public ulong ReadVarint()
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            var b = stream.ReadByte();
            if (b < 0)
            {
                throw new InvalidDataException("The protobuf stream ends inside a number.");
            }

            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }

        throw new InvalidDataException("A protobuf number is longer than 10 bytes.");
    }

    public long ReadLength()
    {
        var length = ReadVarint();
        return length > (ulong)(stream.Length - stream.Position)
            ? throw new InvalidDataException("A protobuf field is longer than the rest of the file.")
            : (long)length;
    }

    /// <summary>
    /// Reads a length-delimited field's length and returns where the field ends. (Position + ReadLength() would be
    /// short by the length's own bytes: C# reads Position first.)
    /// </summary>
    public long ReadEnd()
    {
        var length = ReadLength();
        return stream.Position + length;
    }

    public string ReadString()
    {
        var length = ReadLength();
        if (length > 1 << 20)
        {
            throw new InvalidDataException("A name in the model is longer than 1 MiB.");
        }

        var bytes = new byte[length];
        stream.ReadExactly(bytes);
        return Encoding.UTF8.GetString(bytes);
    }

    /// <summary>A 32-bit float field (wire type 5), little-endian as protobuf writes it.</summary>
    public float ReadSingle()
    {
        Span<byte> bytes = stackalloc byte[4];
        stream.ReadExactly(bytes);
        return System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(bytes);
    }

    /// <summary>A length-delimited field's bytes.</summary>
    public byte[] ReadBytes()
    {
        var bytes = new byte[ReadLength()];
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>The next <paramref name="count"/> bytes.</summary>
    public byte[] ReadExactly(int count)
    {
        var bytes = new byte[count];
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>Seeks past the next <paramref name="count"/> bytes.</summary>
    public void SkipBytes(long count) => stream.Seek(count, SeekOrigin.Current);

    public void Skip(ProtoField field)
    {
        switch (field.WireType)
        {
            case 0:
                ReadVarint();
                break;
            case 1:
                stream.Seek(8, SeekOrigin.Current);
                break;
            case 2:
                stream.Seek(ReadLength(), SeekOrigin.Current);
                break;
            case 5:
                stream.Seek(4, SeekOrigin.Current);
                break;
            default:
                throw new InvalidDataException($"Unsupported protobuf wire type {field.WireType} (field {field.Number}).");
        }
    }
}
