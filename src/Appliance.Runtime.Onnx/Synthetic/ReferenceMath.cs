namespace Appliance.Runtime.Onnx.Synthetic;

/// <summary>The plain loops both C# reference forward passes share, and their greedy decoding.</summary>
internal static class ReferenceMath
{
    /// <summary>y = bias + x @ weight, weight [x.Length, outputs] row-major, summed in input order.</summary>
    public static float[] Linear(float[] x, float[] weight, float[]? bias, int outputs)
    {
        var y = bias is null ? new float[outputs] : (float[])bias.Clone();
        for (var i = 0; i < x.Length; i++)
        {
            var xi = x[i];
            var row = weight.AsSpan(i * outputs, outputs);
            for (var j = 0; j < outputs; j++)
            {
                y[j] += xi * row[j];
            }
        }

        return y;
    }

    public static void Accumulate(float[] target, float[] addend)
    {
        for (var i = 0; i < target.Length; i++)
        {
            target[i] += addend[i];
        }
    }

    /// <summary>The first index of the largest value (greedy picks the lowest id on a tie, as the engine does).</summary>
    public static int ArgMax(float[] values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    /// <summary>Greedy generation: feed the prompt, then each chosen token, until the count or the context runs out.</summary>
    public static List<int> Greedy(Func<IEnumerable<int>, float[]> feed, Func<int> position, int contextLength, IReadOnlyList<int> prompt, int maxNewTokens)
    {
        var logits = feed(prompt);
        var output = new List<int>();
        while (output.Count < maxNewTokens)
        {
            var next = ArgMax(logits);
            output.Add(next);
            if (output.Count == maxNewTokens || position() >= contextLength)
            {
                break;
            }

            logits = feed([next]);
        }

        return output;
    }
}
