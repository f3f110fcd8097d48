namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>SplitMix64: tiny, fast and identical on every platform, unlike System.Random across versions.</summary>
internal sealed class SplitMix64(ulong state)
{
    private ulong _state = state;

    public float[] NextUniformArray(long count, float halfWidth, float centre = 0f)
    {
        var values = new float[count];
        for (long i = 0; i < count; i++)
        {
            values[i] = centre + (halfWidth * ((2f * NextUnit()) - 1f));
        }

        return values;
    }

    private float NextUnit()
    {
        _state += 0x9E3779B97F4A7C15UL;
        var z = _state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 40) * (1f / (1 << 24));
    }
}
