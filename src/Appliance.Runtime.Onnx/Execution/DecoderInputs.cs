using Appliance.Engine;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>The model inputs of one run, and where each row's newest real token sits.</summary>
internal sealed record DecoderInputValues(OrtValue Ids, OrtValue Mask, OrtValue? Positions, int[] LastIndex) : IDisposable
{
    public void Dispose()
    {
        Ids.Dispose();
        Mask.Dispose();
        Positions?.Dispose();
    }
}

/// <summary>
/// Builds input_ids, attention_mask and position_ids for a padded batch. Padded positions are masked with 0 and
/// positions count real tokens only, so a row's numbers are the same as when it runs alone.
/// Left padding (concatenating caches): the mask spans the padded past plus the new tokens.
/// Right padding (shared buffers): the mask spans each row's real tokens from position 0; its row sums give lengths.
/// </summary>
internal static class DecoderInputs
{
    public static DecoderInputValues Build(
        IReadOnlyList<RunnerSequence> rows,
        PaddingSide padding,
        int pastWidth,
        int padTokenId,
        DecoderSignature types,
        int minimumMaskWidth = 0)
    {
        var width = rows.Max(r => r.NewTokens.Length);
        // A wider mask than the rows need (right padding only: its extra columns are 0) selects a LongRoPE export's long cache.
        var total = padding == PaddingSide.Left ? pastWidth + width : Math.Max(minimumMaskWidth, rows.Max(r => r.PastLength + r.NewTokens.Length));
        var ids = new long[rows.Count * width];
        var mask = new long[rows.Count * total];
        var positions = new long[rows.Count * width];
        var lastIndex = new int[rows.Count];
        for (var row = 0; row < rows.Count; row++)
        {
            var sequence = rows[row];
            var tokens = sequence.NewTokens.Span;
            var first = padding == PaddingSide.Left ? width - tokens.Length : 0;
            ids.AsSpan(row * width, width).Fill(padTokenId);
            for (var j = 0; j < tokens.Length; j++)
            {
                ids[(row * width) + first + j] = tokens[j];
                positions[(row * width) + first + j] = sequence.PastLength + j;
            }

            lastIndex[row] = first + tokens.Length - 1;
            var maskRow = mask.AsSpan(row * total, total);
            if (padding == PaddingSide.Left)
            {
                // [padding of the past][real past][padding of the new tokens][real new tokens]
                maskRow.Slice(pastWidth - sequence.PastLength, sequence.PastLength).Fill(1);
                maskRow.Slice(pastWidth + first, tokens.Length).Fill(1);
            }
            else
            {
                maskRow[..(sequence.PastLength + tokens.Length)].Fill(1);
            }
        }

        return new DecoderInputValues(
            Tensor(ids, [rows.Count, width], types.IdsType),
            Tensor(mask, [rows.Count, total], types.MaskType),
            types.PositionIdsType is { } positionType ? Tensor(positions, [rows.Count, width], positionType) : null,
            lastIndex);
    }

    private static OrtValue Tensor(long[] values, long[] shape, TensorElementType type) => type switch
    {
        TensorElementType.Int64 => OrtValue.CreateTensorValueFromMemory(values, shape),
        TensorElementType.Int32 => OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(values, v => (int)v), shape),
        _ => throw new NotSupportedException($"Decoder inputs of type {type} are not supported (expected int64 or int32)."),
    };
}
