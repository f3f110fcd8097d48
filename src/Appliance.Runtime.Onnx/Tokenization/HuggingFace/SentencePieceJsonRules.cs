using System.Text.Json;

namespace Appliance.Runtime.Onnx.Tokenization.HuggingFace;

/// <summary>
/// The normalizer and decoder of a SentencePiece-style tokenizer.json (Gemma 3, Llama 2): spaces become "▁", a "▁" may
/// be prepended, and decoding undoes both. Only the steps these files use are accepted; any other refuses the model.
/// </summary>
internal sealed class SentencePieceJsonRules
{
    private readonly List<(string From, string To)> _normalizerReplacements = [];
    private readonly List<(string From, string To)> _decoderReplacements = [];

    private SentencePieceJsonRules()
    {
    }

    /// <summary>Text put in front of every plain-text segment (Llama 2's "▁"), or empty.</summary>
    public string Prepend { get; private set; } = string.Empty;

    /// <summary>Whether byte pieces ("&lt;0xE2&gt;") are turned back into UTF-8 text when decoding.</summary>
    public bool DecodeBytes { get; private set; }

    /// <summary>How many leading spaces decoding removes from the text (Llama 2: one, the prepended "▁").</summary>
    public int StripLeadingSpaces { get; private set; }

    public static SentencePieceJsonRules Read(JsonElement root, string path)
    {
        var rules = new SentencePieceJsonRules();
        foreach (var step in TokenizerJson.Steps(TokenizerJson.Optional(root, "normalizer"), "normalizers", path))
        {
            switch (TokenizerJson.Type(step))
            {
                case "Prepend" when step.TryGetProperty("prepend", out var prepend) && rules.Prepend.Length == 0:
                    rules.Prepend = prepend.GetString() ?? string.Empty;
                    break;
                case "Replace" when StringPattern(step) is { } from && step.TryGetProperty("content", out var to):
                    rules._normalizerReplacements.Add((from, to.GetString() ?? string.Empty));
                    break;
                default:
                    throw TokenizerJson.Unsupported(path, "normalizer", step.GetRawText());
            }
        }

        foreach (var step in TokenizerJson.Steps(TokenizerJson.Optional(root, "pre_tokenizer"), "pretokenizers", path))
        {
            // Gemma 3 splits on " " after its normalizer has already turned every space into "▁": a step with no effect.
            if (TokenizerJson.Type(step) != "Split" || StringPattern(step) is not { } pattern || !rules.RemovedByNormalizer(pattern))
            {
                throw TokenizerJson.Unsupported(path, "pre_tokenizer", step.GetRawText());
            }
        }

        foreach (var step in TokenizerJson.Steps(TokenizerJson.Optional(root, "decoder"), "decoders", path))
        {
            switch (TokenizerJson.Type(step))
            {
                case "Replace" when StringPattern(step) is { } from && step.TryGetProperty("content", out var to):
                    rules._decoderReplacements.Add((from, to.GetString() ?? string.Empty));
                    break;
                case "ByteFallback":
                    rules.DecodeBytes = true;
                    break;
                case "Fuse":
                    break;
                case "Strip" when step.TryGetProperty("content", out var content) && content.GetString() == " "
                    && step.TryGetProperty("stop", out var stop) && stop.GetInt32() == 0 && step.TryGetProperty("start", out var start):
                    rules.StripLeadingSpaces = start.GetInt32();
                    break;
                default:
                    throw TokenizerJson.Unsupported(path, "decoder", step.GetRawText());
            }
        }

        return rules;
    }

    public string Normalize(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty)
        {
            return string.Empty;
        }

        var normalized = string.Concat(Prepend, text);
        foreach (var (from, to) in _normalizerReplacements)
        {
            normalized = normalized.Replace(from, to, StringComparison.Ordinal);
        }

        return normalized;
    }

    public string DecodePiece(string piece)
    {
        foreach (var (from, to) in _decoderReplacements)
        {
            piece = piece.Replace(from, to, StringComparison.Ordinal);
        }

        return piece;
    }

    public string Finish(string text)
    {
        var strip = 0;
        while (strip < StripLeadingSpaces && strip < text.Length && text[strip] == ' ')
        {
            strip++;
        }

        return text[strip..];
    }

    private bool RemovedByNormalizer(string pattern) =>
        _normalizerReplacements.Any(r => r.From == pattern && !r.To.Contains(pattern, StringComparison.Ordinal));

    private static string? StringPattern(JsonElement step) =>
        step.TryGetProperty("pattern", out var pattern) && pattern.TryGetProperty("String", out var text) ? text.GetString() : null;
}
