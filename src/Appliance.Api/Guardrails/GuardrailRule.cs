using System.Text.RegularExpressions;

namespace Appliance.Api.Guardrails;

/// <summary>Where one rule matched in a text.</summary>
internal readonly record struct RuleMatch(GuardrailRule Rule, int Start, int Length)
{
    public int End => Start + Length;
}

/// <summary>A rule ready to match: how it finds text (linear in the text, whatever it holds), what it does and where.</summary>
internal sealed class GuardrailRule
{
    private readonly ITextMatcher _matcher;
    private readonly HashSet<string> _models;

    private GuardrailRule(string name, ITextMatcher matcher, int maxLength, bool spansWhitespace, string mask, GuardrailRuleOptions options)
    {
        SpansWhitespace = spansWhitespace;
        Name = name;
        _matcher = matcher;
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

    /// <summary>Whether the rule screens the model known by these names (its id and aliases).</summary>
    public bool AppliesTo(IEnumerable<string> modelNames) => _models.Count == 0 || modelNames.Any(_models.Contains);

    /// <summary>Matches starting at or after <paramref name="startAt"/>; the text before it is context (word boundaries).</summary>
    public IEnumerable<RuleMatch> Matches(string text, int startAt = 0) =>
        _matcher.Find(text, startAt).Select(found => WholeCharacters(text, found.Start, found.Length));

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

        if (!Enum.IsDefined(options.Action) || !Enum.IsDefined(options.Applies))
        {
            return (null, $"{setting}: Action must be Block or Mask and Applies Input, Output or Both (not a number)");
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
                ? (new GuardrailRule(options.Name, new ExpressionMatcher(Linear(detector.Pattern), detector.IsValid), detector.MaxLength, detector.SpansWhitespace, options.Mask ?? detector.Mask, options), null)
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
                expression = Linear(pattern);
            }
            catch (Exception exception) when (exception is ArgumentException or NotSupportedException)
            {
                return (null, $"{setting}:Pattern does not compile for the linear-time matcher (no lookarounds, back-references or atomic groups): {exception.Message}");
            }

            return expression.IsMatch(string.Empty)
                ? (null, $"{setting}:Pattern matches empty text; it would match everywhere")
                : (new GuardrailRule(options.Name, new ExpressionMatcher(expression, null), options.MaxLength ?? 64, spansWhitespace: true, mask, options), null);
        }

        var words = options.Words.Select(w => w.Trim()).ToList();
        if (words.Count > MaxWords || words.Any(w => w.Length is 0 or > 200))
        {
            return (null, $"{setting}:Words holds an empty word, one longer than 200 characters, or more than {MaxWords} words");
        }

        // Whole words ("ass" is not in "class"); the words of a phrase apart by up to three spaces or a line break.
        var phrases = words.Select(w => w.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).ToList();
        var longest = phrases.Max(p => p.Sum(w => w.Length) + (3 * (p.Length - 1)));
        return (new GuardrailRule(options.Name, new WordListMatcher(phrases), longest, phrases.Any(p => p.Length > 1), mask, options), null);
    }

    /// <summary>Words in one rule (the table is looked up at each word start; the bound is for the start and the view).</summary>
    private const int MaxWords = 10_000;

    private static Regex Linear(string pattern) => new(pattern, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
}
