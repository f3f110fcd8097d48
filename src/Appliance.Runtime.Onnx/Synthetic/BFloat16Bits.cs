namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>bfloat16 as the upper 16 bits of a float32, rounded to nearest even (as ONNX Runtime's Cast rounds).</summary>
public static class BFloat16Bits
{
    public static ushort FromFloat(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x40);
        }

        var rounding = 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    public static float ToFloat(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    public static float Round(float value) => ToFloat(FromFloat(value));
}
