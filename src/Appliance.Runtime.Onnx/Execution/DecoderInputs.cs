using Appliance.Engine;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Appliance.Runtime.Onnx.Execution;

/// <summary>
/// Builds input_ids, attention_mask and position_ids for a batch whose rows are left-padded: padded positions are
/// masked with 0 and positions count real tokens only, so a row's numbers are the same as when it runs alone.
/// </summary>
internal static class DecoderInputs
{
    public static (OrtValue Ids, OrtValue Mask, OrtValue Positions) Build(
        IReadOnlyList<RunnerSequence> batch,
        int pastLength,
        int padTokenId,
        TensorElementType idsType,
        TensorElementType maskType,
        TensorElementType positionsType)
    {
        var rows = batch.Count;
        var width = batch.Max(r => r.NewTokens.Length);
        var total = pastLength + width;
        var ids = new long[rows * width];
        var mask = new long[rows * total];
        var positions = new long[rows * width];
        for (var row = 0; row < rows; row++)
        {
            var sequence = batch[row];
            var tokens = sequence.NewTokens.Span;
            var pad = width - tokens.Length;
            for (var j = 0; j < width; j++)
            {
                var real = j >= pad;
                ids[(row * width) + j] = real ? tokens[j - pad] : padTokenId;
                positions[(row * width) + j] = real ? sequence.PastLength + (j - pad) : 0;
            }

            // [padding of the past][real past][padding of the new tokens][real new tokens]
            var maskRow = mask.AsSpan(row * total, total);
            maskRow.Slice(pastLength - sequence.PastLength, sequence.PastLength).Fill(1);
            maskRow.Slice(pastLength + pad, tokens.Length).Fill(1);
        }

        return (
            Tensor(ids, [rows, width], idsType),
            Tensor(mask, [rows, total], maskType),
            Tensor(positions, [rows, width], positionsType));
    }

    private static OrtValue Tensor(long[] values, long[] shape, TensorElementType type) => type switch
    {
        TensorElementType.Int64 => OrtValue.CreateTensorValueFromMemory(values, shape),
        TensorElementType.Int32 => OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(values, v => (int)v), shape),
        _ => throw new NotSupportedException($"Decoder inputs of type {type} are not supported (expected int64 or int32)."),
    };
}
