using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Appliance.Runtime.Onnx.Tokenization.HuggingFace;

/// <summary>
/// Rewrites a tokenizer's split regex, written for an engine that matches Unicode code points (Oniguruma in Hugging
/// Face tokenizers), so that .NET's UTF-16 regex gives the same pieces. .NET sees a character outside the Basic
/// Multilingual Plane (most emoji, some scripts) as two surrogates of category Cs, so "\p{S}" does not match "🚀" and
/// "[^\p{L}]" matches half of "𐌰". Every Unicode category escape, alone or in a bracket class, becomes an alternation
/// that also lists the surrogate pairs of the supplementary characters in that category.
/// </summary>
internal static class CodePointRegex
{
    private const string Surrogates = @"\uD800-\uDFFF";

    /// <summary>The pattern as written (exact for text without supplementary characters, and faster) and as translated.</summary>
    public static (Regex Plain, Regex CodePoints) Create(string pattern)
    {
        var translated = Translate(pattern); // first: its errors name the category the file got wrong
        return (new Regex(pattern, RegexOptions.Compiled), new Regex(translated, RegexOptions.Compiled));
    }

    /// <summary>Whether text holds a surrogate, so that only the translated pattern splits it correctly.</summary>
    public static bool NeedsCodePoints(ReadOnlySpan<char> text) => text.ContainsAnyInRange('\uD800', '\uDFFF');

    public static string Translate(string pattern)
    {
        var output = new StringBuilder(pattern.Length * 2);
        var i = 0;
        while (i < pattern.Length)
        {
            if (pattern[i] == '\\' && i + 1 < pattern.Length && pattern[i + 1] is 'p' or 'P')
            {
                var (categories, end) = CategoryEscape(pattern, i);
                var escape = pattern[i..end];
                output.Append(pattern[i + 1] == 'P'
                    ? $"(?:[^{@"\p" + escape[2..]}{Surrogates}]{Other(SupplementaryPairs(r => !categories.Contains(Rune.GetUnicodeCategory(r))))})"
                    : $"(?:{escape}{Other(SupplementaryPairs(r => categories.Contains(Rune.GetUnicodeCategory(r))))})");
                i = end;
            }
            else if (pattern[i] == '\\' && i + 1 < pattern.Length)
            {
                output.Append(pattern, i, 2);
                i += 2;
            }
            else if (pattern[i] == '[')
            {
                var end = ClassEnd(pattern, i);
                output.Append(BracketClass(pattern[i..end]));
                i = end;
            }
            else
            {
                output.Append(pattern[i]);
                i++;
            }
        }

        return output.ToString();
    }

    /// <summary>A bracket class: unchanged when it names no category; otherwise the class plus its supplementary members.</summary>
    private static string BracketClass(string text)
    {
        var negated = text.Length > 1 && text[1] == '^';
        var body = text[(negated ? 2 : 1)..^1];
        var included = new HashSet<UnicodeCategory>();
        var excluded = new HashSet<UnicodeCategory>();
        var hasCategory = false;
        for (var i = 0; i < body.Length; i++)
        {
            if (body[i] == '\\' && i + 1 < body.Length && body[i + 1] is 'p' or 'P')
            {
                var (categories, end) = CategoryEscape(body, i);
                (body[i + 1] == 'p' ? included : excluded).UnionWith(categories);
                hasCategory = true;
                i = end - 1;
            }
            else if (body[i] == '\\')
            {
                i++; // \s, \r, \n, \d and literal escapes name no supplementary character in tokenizer patterns
            }
            else if (body[i] == '[')
            {
                throw new ArgumentException($"nested or subtracted character classes are not supported: {text}");
            }
        }

        if (!hasCategory)
        {
            return text;
        }

        bool InClass(Rune rune)
        {
            var category = Rune.GetUnicodeCategory(rune);
            return included.Contains(category) || (excluded.Count > 0 && !excluded.Contains(category));
        }

        // The supplementary members leave the bracket class: it must not match a lone surrogate of them.
        var pairs = SupplementaryPairs(negated ? r => !InClass(r) : InClass);
        return negated
            ? $"(?:[^{body}{Surrogates}]{Other(pairs)})"
            : $"(?:{text}{Other(pairs)})";
    }

    /// <summary>The index just after the "]" that closes the bracket class opening at <paramref name="start"/>.</summary>
    private static int ClassEnd(string pattern, int start)
    {
        var i = start + 1;
        if (i < pattern.Length && pattern[i] == '^')
        {
            i++;
        }

        if (i < pattern.Length && pattern[i] == ']')
        {
            i++; // a "]" first in the class is a literal
        }

        for (; i < pattern.Length; i++)
        {
            if (pattern[i] == '\\')
            {
                i++;
            }
            else if (pattern[i] == ']')
            {
                return i + 1;
            }
        }

        throw new ArgumentException($"a character class is never closed: {pattern}");
    }

    // The guard lets the engine skip the long alternation at every character that is not a high surrogate.
    private static string Other(string pairs) => pairs.Length == 0 ? string.Empty : @"|(?=[\uD800-\uDBFF])(?:" + pairs + ")";

    /// <summary>"\p{L}" or "\p{Lu}" from <paramref name="start"/>: the categories it names and where it ends.</summary>
    private static (HashSet<UnicodeCategory> Categories, int End) CategoryEscape(string pattern, int start)
    {
        if (start + 2 >= pattern.Length || pattern[start + 2] != '{')
        {
            throw new ArgumentException($"a Unicode category escape without braces at {start} is not supported: {pattern}");
        }

        var close = pattern.IndexOf('}', start);
        var name = pattern[(start + 3)..close];
        return (Categories(name) ?? throw new ArgumentException($"unknown Unicode category '{name}' in {pattern}"), close + 1);
    }

    private static HashSet<UnicodeCategory>? Categories(string name)
    {
        var all = Enum.GetValues<UnicodeCategory>();
        var matching = all.Where(category => Abbreviation(category).StartsWith(name, StringComparison.Ordinal) && name.Length is 1 or 2).ToHashSet();
        return matching.Count > 0 ? matching : null;
    }

    /// <summary>The two-letter name of a general category, as regex escapes write it (Lu, Nd, So, ...).</summary>
    private static string Abbreviation(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter => "Lu",
        UnicodeCategory.LowercaseLetter => "Ll",
        UnicodeCategory.TitlecaseLetter => "Lt",
        UnicodeCategory.ModifierLetter => "Lm",
        UnicodeCategory.OtherLetter => "Lo",
        UnicodeCategory.NonSpacingMark => "Mn",
        UnicodeCategory.SpacingCombiningMark => "Mc",
        UnicodeCategory.EnclosingMark => "Me",
        UnicodeCategory.DecimalDigitNumber => "Nd",
        UnicodeCategory.LetterNumber => "Nl",
        UnicodeCategory.OtherNumber => "No",
        UnicodeCategory.SpaceSeparator => "Zs",
        UnicodeCategory.LineSeparator => "Zl",
        UnicodeCategory.ParagraphSeparator => "Zp",
        UnicodeCategory.Control => "Cc",
        UnicodeCategory.Format => "Cf",
        UnicodeCategory.Surrogate => "Cs",
        UnicodeCategory.PrivateUse => "Co",
        UnicodeCategory.ConnectorPunctuation => "Pc",
        UnicodeCategory.DashPunctuation => "Pd",
        UnicodeCategory.OpenPunctuation => "Ps",
        UnicodeCategory.ClosePunctuation => "Pe",
        UnicodeCategory.InitialQuotePunctuation => "Pi",
        UnicodeCategory.FinalQuotePunctuation => "Pf",
        UnicodeCategory.OtherPunctuation => "Po",
        UnicodeCategory.MathSymbol => "Sm",
        UnicodeCategory.CurrencySymbol => "Sc",
        UnicodeCategory.ModifierSymbol => "Sk",
        UnicodeCategory.OtherSymbol => "So",
        _ => "Cn",
    };

    /// <summary>
    /// The supplementary code points the predicate accepts, as an alternation of "high surrogate, low surrogate range"
    /// pairs; consecutive high surrogates with the same low ranges share one alternative.
    /// </summary>
    private static string SupplementaryPairs(Func<Rune, bool> accepts)
    {
        var alternatives = new List<string>();
        string? pendingLows = null;
        int pendingFirst = 0, pendingLast = 0;
        for (var high = 0xD800; high <= 0xDBFF; high++)
        {
            var lows = LowRanges(high, accepts);
            if (lows == pendingLows && high == pendingLast + 1)
            {
                pendingLast = high;
                continue;
            }

            Flush();
            (pendingLows, pendingFirst, pendingLast) = (lows, high, high);
        }

        Flush();
        return string.Join("|", alternatives);

        void Flush()
        {
            if (!string.IsNullOrEmpty(pendingLows))
            {
                var highs = pendingFirst == pendingLast ? Escape(pendingFirst) : $"[{Escape(pendingFirst)}-{Escape(pendingLast)}]";
                alternatives.Add($"{highs}[{pendingLows}]");
            }
        }
    }

    private static string LowRanges(int high, Func<Rune, bool> accepts)
    {
        var ranges = new StringBuilder();
        var start = -1;
        for (var low = 0xDC00; low <= 0xE000; low++)
        {
            var inside = low <= 0xDFFF && accepts(new Rune((char)high, (char)low));
            if (inside && start < 0)
            {
                start = low;
            }
            else if (!inside && start >= 0)
            {
                ranges.Append(start == low - 1 ? Escape(start) : $"{Escape(start)}-{Escape(low - 1)}");
                start = -1;
            }
        }

        return ranges.ToString();
    }

    private static string Escape(int unit) => $"\\u{unit:X4}";
}
