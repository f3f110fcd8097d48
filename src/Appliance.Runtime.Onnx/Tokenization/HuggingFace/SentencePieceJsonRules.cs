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

    /// <summary>
    /// Whether <see cref="Prepend"/> goes only in front of the text's first segment (a Metaspace pre-tokenizer with
    /// prepend_scheme "first", as non-legacy Llama and Mistral v0.3 files have), not after each added token.
    /// </summary>
    public bool PrependFirstOnly { get; private set; }

    /// <summary>Whether a segment that already begins with <see cref="Prepend"/> gets none (Metaspace's rule; a Prepend normalizer always adds it).</summary>
    public bool PrependUnlessPresent { get; private set; }

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
            if (TokenizerJson.Type(step) == "Metaspace" && Metaspace(step) is { } metaspace && rules.Prepend.Length == 0)
            {
                // The normalizer's work done by the pre-tokenizer: spaces become the replacement, which is prepended to
                // the text ("first": to its first segment only; "always": to every segment, as Llama 2's normalizer does).
                rules._normalizerReplacements.Add((" ", metaspace.Replacement));
                rules.Prepend = metaspace.Scheme == "never" ? string.Empty : metaspace.Replacement;
                rules.PrependFirstOnly = metaspace.Scheme == "first";
                rules.PrependUnlessPresent = true;
                continue;
            }

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
                case "Metaspace" when Metaspace(step) is { } metaspace:
                    rules._decoderReplacements.Add((metaspace.Replacement, " "));
                    rules.StripLeadingSpaces = metaspace.Scheme == "never" ? 0 : 1;
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

    /// <param name="atStart">Whether the segment begins the text (no added token before it).</param>
    public string Normalize(ReadOnlySpan<char> text, bool atStart = true)
    {
        if (text.IsEmpty)
        {
            return string.Empty;
        }

        if (PrependUnlessPresent)
        {
            // Metaspace replaces first, then prepends unless the text now starts with the replacement.
            var replaced = text.ToString();
            foreach (var (from, to) in _normalizerReplacements)
            {
                replaced = replaced.Replace(from, to, StringComparison.Ordinal);
            }

            return (PrependFirstOnly && !atStart) || replaced.StartsWith(Prepend, StringComparison.Ordinal) ? replaced : Prepend + replaced;
        }

        var normalized = string.Concat(PrependFirstOnly && !atStart ? string.Empty : Prepend, text);
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

    /// <summary>
    /// A Metaspace step's replacement and prepend scheme, when it is one this reads: a single replacement character, no
    /// splitting at it (a split SentencePiece text would be merged word by word, not as SentencePiece merges it).
    /// </summary>
    private static (string Replacement, string Scheme)? Metaspace(JsonElement step)
    {
        var replacement = step.TryGetProperty("replacement", out var r) ? r.GetString() : "\u2581";
        var scheme = step.TryGetProperty("prepend_scheme", out var p) ? p.GetString()
            : step.TryGetProperty("add_prefix_space", out var add) && add.ValueKind == JsonValueKind.False ? "never" : "always";
        var split = !step.TryGetProperty("split", out var s) || s.ValueKind != JsonValueKind.False;
        return replacement is { Length: 1 } && scheme is "first" or "always" or "never" && !split ? (replacement, scheme) : null;
    }

    private static string? StringPattern(JsonElement step) =>
        step.TryGetProperty("pattern", out var pattern) && pattern.TryGetProperty("String", out var text) ? text.GetString() : null;
}
