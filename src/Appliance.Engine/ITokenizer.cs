namespace Appliance.Engine;

/// <summary>Turns text into token ids and back. Implementations must be safe to call from several threads.</summary>
public interface ITokenizer
{
    /// <summary>
    /// Encodes text as written, adding nothing: what a rendered chat template needs (it writes its own BOS). Special
    /// tokens written in the text become their ids.
    /// </summary>
    IReadOnlyList<int> Encode(string text);

    /// <summary>
    /// Encodes a plain prompt as the model's tokenizer does by default (Hugging Face's add_special_tokens): with the
    /// BOS, or whatever its post-processor adds. What /v1/completions sends.
    /// </summary>
    IReadOnlyList<int> EncodeWithSpecialTokens(string text) => Encode(text);

    /// <summary>
    /// Decodes a sequence. Ids that end inside a multi-byte character decode to U+FFFD at the end, which streaming
    /// detokenisation relies on to hold them back.
    /// </summary>
    string Decode(IEnumerable<int> ids);

    /// <summary>
    /// The bytes a token adds to the output (UTF-8, possibly part of a character), or null for tokens that are not text
    /// (special and control tokens). Constrained decoding matches these against its grammar. The default reads them
    /// from <see cref="Decode"/>, which is right for tokens that decode to whole characters on their own; tokenizers
    /// whose pieces can be part of a character or carry a word-boundary mark give their own.
    /// </summary>
    byte[]? TokenBytes(int id)
    {
        var text = Decode([id]);
        return text.Length == 0 || text.Contains('\uFFFD', StringComparison.Ordinal) ? null : System.Text.Encoding.UTF8.GetBytes(text);
    }
}
