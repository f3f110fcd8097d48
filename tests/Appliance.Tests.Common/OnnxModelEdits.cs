namespace Appliance.Tests.Common;

/// <summary>Edits of a written ONNX file, to make the exports a runner must refuse.</summary>
public static class OnnxModelEdits
{
    /// <summary>
    /// Rewrites a float32 graph input's declared element type in place (for example to 3, int8). Its ValueInfo is the
    /// name's last occurrence (nodes come first) and continues type {0x12 len} -> tensor_type {0x0A len} -> elem_type {0x08 value}.
    /// </summary>
    public static void RetypeInput(string path, string name, byte type)
    {
        var bytes = File.ReadAllBytes(path);
        var at = bytes.AsSpan().LastIndexOf(System.Text.Encoding.UTF8.GetBytes(name));
        if (at < 0)
        {
            throw new InvalidDataException($"{name} is not in {path}");
        }

        at += name.Length;
        Expect(bytes[at] == 0x12, "a type");
        at = SkipVarint(bytes, at + 1);
        Expect(bytes[at] == 0x0A, "a tensor type");
        at = SkipVarint(bytes, at + 1);
        Expect(bytes[at] == 0x08 && bytes[at + 1] == 1, "a float32 element type");
        bytes[at + 1] = type;
        File.WriteAllBytes(path, bytes);

        void Expect(bool condition, string what)
        {
            if (!condition)
            {
                throw new InvalidDataException($"{name} in {path} is not followed by {what}");
            }
        }
    }

    private static int SkipVarint(byte[] bytes, int at)
    {
        while ((bytes[at] & 0x80) != 0)
        {
            at++;
        }

        return at + 1;
    }
}
