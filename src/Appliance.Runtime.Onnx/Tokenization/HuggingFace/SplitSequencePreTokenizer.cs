using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace Appliance.Runtime.Onnx.Tokenization.HuggingFace;

/// <summary>
/// A tokenizer.json pre-tokenizer that is a sequence of Split steps with "Isolated" behaviour (DeepSeek V3 has three,
/// Llama 3 and Qwen3 one): each regex splits every piece the previous one produced into its matches and the gaps
/// between them. Added tokens are cut out first and stay whole. Text with supplementary characters (emoji) is split
/// with the code-point form of each regex (<see cref="CodePointRegex"/>), other text with the faster plain form.
/// </summary>
internal sealed class SplitSequencePreTokenizer : PreTokenizer
{
    private readonly IReadOnlyList<(Regex Plain, Regex CodePoints)> _splits;
    private readonly AddedTokenMatcher _addedTokens;

    public SplitSequencePreTokenizer(IReadOnlyList<(Regex Plain, Regex CodePoints)> splits, AddedTokenMatcher addedTokens)
    {
        _splits = splits;
        _addedTokens = addedTokens;
    }

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => Split(text ?? string.Empty);

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text.ToString());

    private List<(int Offset, int Length)> Split(string text)
    {
        var pieces = new List<(int Offset, int Length)>();
        foreach (var (offset, length, id) in _addedTokens.Split(text))
        {
            if (id is not null)
            {
                pieces.Add((offset, length));
                continue;
            }

            List<(int Offset, int Length)> current = [(offset, length)];
            foreach (var regex in _splits)
            {
                current = [.. current.SelectMany(piece => Isolate(
                    CodePointRegex.NeedsCodePoints(text.AsSpan(piece.Offset, piece.Length)) ? regex.CodePoints : regex.Plain, text, piece.Offset, piece.Length))];
            }

            pieces.AddRange(current);
        }

        return pieces;
    }

    private static IEnumerable<(int Offset, int Length)> Isolate(Regex regex, string text, int offset, int length)
    {
        var position = offset;
        var end = offset + length;
        for (var match = regex.Match(text, offset, length); match.Success; match = match.NextMatch())
        {
            if (match.Length == 0)
            {
                continue;
            }

            if (match.Index > position)
            {
                yield return (position, match.Index - position);
            }

            yield return (match.Index, match.Length);
            position = match.Index + match.Length;
        }

        if (end > position)
        {
            yield return (position, end - position);
        }
    }
}
