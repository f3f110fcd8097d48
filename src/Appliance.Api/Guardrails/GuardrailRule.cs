using System.Text.RegularExpressions;

namespace Appliance.Api.Guardrails;

/// <summary>Where one rule matched in a text.</summary>
internal readonly record struct RuleMatch(GuardrailRule Rule, int Start, int Length)
{
    public int End => Start + Length;
}

/// <summary>A rule ready to match: its expression (linear-time, so no text can make it slow), what it does and where.</summary>
internal sealed class GuardrailRule
{
    private readonly Regex _expression;
    private readonly Func<string, bool>? _isValid;
    private readonly HashSet<string> _models;

    private GuardrailRule(string name, Regex expression, Func<string, bool>? isValid, int maxLength, bool spansWhitespace, string mask, GuardrailRuleOptions options)
    {
        SpansWhitespace = spansWhitespace;
        Name = name;
        _expression = expression;
        _isValid = isValid;
        MaxLength = maxLength;
        Mask = mask;
        Action = options.Action;
        Input = options.Applies != GuardrailDirection.Output;
        Output = options.Applies != GuardrailDirection.Input;
        _models = new HashSet<string>(options.Models, StringComparer.OrdinalIgnoreCase);
        ExemptGroups = [.. options.ExemptGroups.Select(g => g.TrimStart('/'))];
    }

    /// <summary>Groups whose members the rule passes over, without their leading "/" (Keycloak writes either form).</summary>
    public IReadOnlyList<string> ExemptGroups { get; }

    public string Name { get; }

    public GuardrailAction Action { get; }

    public bool Input { get; }

    public bool Output { get; }

    /// <summary>The longest text the rule is meant to match: how far a streamed answer is held back for it.</summary>
    public int MaxLength { get; }

    public string Mask { get; }

    /// <summary>Whether a match may hold whitespace; if not, a match followed by a space is whole (see OutputScreen).</summary>
    public bool SpansWhitespace { get; }

    public IReadOnlyCollection<string> Models => _models;

    public bool AppliesTo(string modelId) => _models.Count == 0 || _models.Contains(modelId);

    /// <summary>Matches starting at or after <paramref name="startAt"/>; the text before it is context (word boundaries).</summary>
    public IEnumerable<RuleMatch> Matches(string text, int startAt = 0)
    {
        for (var match = _expression.Match(text, startAt); match.Success; )
        {
            int? length = match.Length == 0 ? null : _isValid is null || _isValid(match.Value) ? match.Length : Shorter(match.Value);
            if (length is null)
            {
                // A number that does not check may hide one that does a little further on ("ref 2024 4111 1111 ..."):
                // look again from the next character, not past the whole match.
                match = match.Index + 1 <= text.Length ? _expression.Match(text, match.Index + 1) : Match.Empty;
                continue;
            }

            yield return WholeCharacters(text, match.Index, length.Value);
            match = _expression.Match(text, match.Index + length.Value);
        }
    }

    /// <summary>A match widened to whole characters: a pattern's "." may take half of a pair of UTF-16 surrogates.</summary>
    private RuleMatch WholeCharacters(string text, int start, int length)
    {
        var end = start + length;
        if (start > 0 && char.IsLowSurrogate(text[start]) && char.IsHighSurrogate(text[start - 1]))
        {
            start--;
        }

        if (end < text.Length && char.IsLowSurrogate(text[end]) && char.IsHighSurrogate(text[end - 1]))
        {
            end++;
        }

        return new RuleMatch(this, start, end - start);
    }

    /// <summary>
    /// A checked number the expression took too much of (a card number and its security code, an IBAN and the
    /// currency after it): the longest part of the match, ended at a separator, that is a match on its own and checks.
    /// </summary>
    private int? Shorter(string match)
    {
        for (var end = match.Length - 1; end > 0; end--)
        {
            if (match[end] is ' ' or '-' && match[..end] is var part && _expression.Match(part) is { Success: true, Index: 0 } whole
                && whole.Length == part.Length && _isValid!(part))
            {
                return end;
            }
        }

        return null;
    }

    /// <summary>Compiles rule <paramref name="index"/>, or returns why it cannot be used (naming the setting).</summary>
    public static (GuardrailRule? Rule, string? Problem) Compile(GuardrailRuleOptions options, int index)
    {
        var setting = $"{GuardrailOptions.Section}:Rules:{index}";
        if (string.IsNullOrWhiteSpace(options.Name))
        {
            return (null, $"{setting}:Name is missing; every rule needs a name (it is what errors, the audit log and metrics show)");
        }

        var kinds = (options.Detector is null ? 0 : 1) + (options.Pattern is null ? 0 : 1) + (options.Words.Count == 0 ? 0 : 1);
        if (kinds != 1)
        {
            return (null, $"{setting} ('{options.Name}') must set exactly one of Detector, Pattern or Words");
        }

        if (options.MaxLength is not null && options.Pattern is null)
        {
            return (null, $"{setting}:MaxLength applies to a Pattern only (a detector's and a word list's are known)");
        }

        if (options.Mask is { Length: 0 or > 100 })
        {
            return (null, $"{setting}:Mask must be 1 to 100 characters");
        }

        if (options.Models.Any(string.IsNullOrWhiteSpace))
        {
            return (null, $"{setting}:Models holds an empty model id");
        }

        if (options.ExemptGroups.Any(g => string.IsNullOrWhiteSpace(g.TrimStart('/'))))
        {
            return (null, $"{setting}:ExemptGroups holds an empty group");
        }

        if (options.Detector is { } name)
        {
            return BuiltInDetectors.Named(name) is { } detector
                ? (new GuardrailRule(options.Name, Linear(detector.Pattern, RegexOptions.None), detector.IsValid, detector.MaxLength, detector.SpansWhitespace, options.Mask ?? detector.Mask, options), null)
                : (null, $"{setting}:Detector '{name}' is not a detector; known: {string.Join(", ", BuiltInDetectors.All.Select(d => d.Name))}");
        }

        var mask = options.Mask ?? $"[{options.Name.ToUpperInvariant()}]";
        if (options.Pattern is { } pattern)
        {
            if (options.MaxLength is not (null or (>= 1 and <= 1000)))
            {
                return (null, $"{setting}:MaxLength must be between 1 and 1000");
            }

            Regex expression;
            try
            {
                expression = Linear(pattern, RegexOptions.None);
            }
            catch (Exception exception) when (exception is ArgumentException or NotSupportedException)
            {
                return (null, $"{setting}:Pattern does not compile for the linear-time matcher (no lookarounds, back-references or atomic groups): {exception.Message}");
            }

            return expression.IsMatch(string.Empty)
                ? (null, $"{setting}:Pattern matches empty text; it would match everywhere")
                : (new GuardrailRule(options.Name, expression, null, options.MaxLength ?? 64, spansWhitespace: true, mask, options), null);
        }

        var words = options.Words.Select(w => w.Trim()).ToList();
        if (words.Count > MaxWords || words.Any(w => w.Length is 0 or > 200))
        {
            return (null, $"{setting}:Words holds an empty word, one longer than 200 characters, or more than {MaxWords} words");
        }

        // Whole words: a boundary on each side that begins or ends with a letter or digit ("ass" is not in "class");
        // the words of a phrase apart by up to three spaces or a line break.
        var phrases = words.Select(w => w.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).ToList();
        var alternatives = phrases.OrderByDescending(p => p.Sum(w => w.Length)).Select(p =>
            (char.IsLetterOrDigit(p[0][0]) ? @"\b" : string.Empty) + string.Join(@"\s{1,3}", p.Select(Regex.Escape)) + (char.IsLetterOrDigit(p[^1][^1]) ? @"\b" : string.Empty));
        var longest = phrases.Max(p => p.Sum(w => w.Length) + (3 * (p.Length - 1)));
        return (new GuardrailRule(options.Name, Linear(string.Join('|', alternatives), RegexOptions.IgnoreCase), null, longest, phrases.Any(p => p.Length > 1), mask, options), null);
    }

    /// <summary>Words in one rule: each is matched at every step of every answer the rule screens.</summary>
    private const int MaxWords = 10_000;

    private static Regex Linear(string pattern, RegexOptions options) =>
        new(pattern, options | RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
}
