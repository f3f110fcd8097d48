using System.Buffers;

namespace Appliance.Engine;

/// <summary>Turns text into token ids and back. Implementations must be safe to call from several threads.</summary>
public interface ITokenizer
{
    /// <summary>Encodes text exactly as the model was trained (no special tokens added unless the model's rules say so).</summary>
    IReadOnlyList<int> Encode(string text);

    /// <summary>
    /// Decodes as many leading ids as form whole characters. Returns <see cref="OperationStatus.NeedMoreData"/>
    /// when the ids end inside a character, so a streaming caller can hold the rest back.
    /// </summary>
    OperationStatus Decode(IEnumerable<int> ids, Span<char> destination, out int idsConsumed, out int charsWritten);

    /// <summary>Decodes a whole sequence (broken characters become U+FFFD).</summary>
    string Decode(IEnumerable<int> ids);
}
