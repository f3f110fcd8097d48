namespace Appliance.Engine;

/// <summary>Turns text into token ids and back. Implementations must be safe to call from several threads.</summary>
public interface ITokenizer
{
    /// <summary>Encodes text exactly as the model was trained (no special tokens added unless the model's rules say so).</summary>
    IReadOnlyList<int> Encode(string text);

    /// <summary>
    /// Decodes a sequence. Ids that end inside a multi-byte character decode to U+FFFD at the end, which streaming
    /// detokenisation relies on to hold them back.
    /// </summary>
    string Decode(IEnumerable<int> ids);
}
