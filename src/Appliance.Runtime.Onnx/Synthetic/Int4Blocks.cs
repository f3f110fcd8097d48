namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>
/// A [in, out] float matrix in MatMulNBits' 4-bit form: for each output column n and each block of 32 inputs, one
/// float scale and 32 codes q in [0, 15] with the implicit zero point 8, so a weight is (q - 8) * scale. Codes are
/// stored [out, blocks, 16 bytes], the lower nibble first.
/// </summary>
public sealed record Int4Blocks(byte[] Codes, float[] Scales, int Inputs, int Outputs)
{
    public const int BlockSize = 32;

    public int Blocks => (Inputs + BlockSize - 1) / BlockSize;

    /// <summary>Quantises symmetrically (largest magnitude of a block maps to 7) and returns the codes with the matrix they stand for.</summary>
    public static (Int4Blocks Blocks, float[] Dequantised) Quantise(float[] weights, int inputs, int outputs)
    {
        var blocks = (inputs + BlockSize - 1) / BlockSize;
        var codes = new byte[outputs * blocks * (BlockSize / 2)];
        var scales = new float[outputs * blocks];
        var dequantised = new float[weights.Length];
        for (var n = 0; n < outputs; n++)
        {
            for (var b = 0; b < blocks; b++)
            {
                var first = b * BlockSize;
                var count = Math.Min(BlockSize, inputs - first);
                var largest = 0f;
                for (var i = 0; i < count; i++)
                {
                    largest = Math.Max(largest, Math.Abs(weights[((first + i) * outputs) + n]));
                }

                var scale = largest > 0 ? largest / 7f : 1f;
                scales[(n * blocks) + b] = scale;
                for (var i = 0; i < count; i++)
                {
                    var k = first + i;
                    var q = (int)Math.Clamp(MathF.Round(weights[(k * outputs) + n] / scale), -8f, 7f) + 8;
                    var at = (((n * blocks) + b) * (BlockSize / 2)) + (i / 2);
                    codes[at] |= (byte)(i % 2 == 0 ? q : q << 4);
                    dequantised[(k * outputs) + n] = (q - 8) * scale;
                }
            }
        }

        return (new Int4Blocks(codes, scales, inputs, outputs), dequantised);
    }
}
