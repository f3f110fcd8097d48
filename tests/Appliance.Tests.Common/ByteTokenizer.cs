using System.Buffers;
using System.Text;
using Appliance.Engine;

namespace Appliance.Tests.Common;

/// <summary>
/// A byte-level test tokenizer: token id = one UTF-8 byte (0-255), so multi-byte characters always span several
/// tokens. Ids 256 and above decode to nothing (use them as EOS or padding).
/// </summary>
public sealed class ByteTokenizer : ITokenizer
{
    public IReadOnlyList<int> Encode(string text) => [.. Encoding.UTF8.GetBytes(text).Select(b => (int)b)];

    public OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten)
    {
        var bytes = ids.Select(i => i < 256 ? (byte)i : (byte?)null).ToList();
        idsConsumed = 0;
        charsWritten = 0;
        var pending = new List<byte>();
        var consumedAtLastChar = 0;
        for (var i = 0; i < bytes.Count; i++)
        {
            if (bytes[i] is { } b)
            {
                pending.Add(b);
            }

            var status = Rune.DecodeFromUtf8(pending.ToArray(), out var rune, out var used);
            if (pending.Count == 0 || status == OperationStatus.Done)
            {
                if (pending.Count > 0)
                {
                    if (charsWritten + rune.Utf16SequenceLength > destination.Length)
                    {
                        idsConsumed = consumedAtLastChar;
                        return OperationStatus.DestinationTooSmall;
                    }

                    charsWritten += rune.EncodeToUtf16(destination[charsWritten..]);
                    pending.RemoveRange(0, used);
                }

                consumedAtLastChar = i + 1;
            }
            else if (status == OperationStatus.InvalidData)
            {
                pending.Clear();
                consumedAtLastChar = i + 1;
            }
        }

        idsConsumed = consumedAtLastChar;
        return idsConsumed == bytes.Count ? OperationStatus.Done : OperationStatus.NeedMoreData;
    }

    public string Decode(IEnumerable<int> ids) => Encoding.UTF8.GetString([.. ids.Where(i => i < 256).Select(i => (byte)i)]);
}
