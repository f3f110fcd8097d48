using System.Globalization;
using System.Text;
using Appliance.Grammar.Schema;
using static Appliance.Grammar.Language.Lang;

namespace Appliance.Grammar.Language;

/// <summary>
/// A JSON Schema <c>pattern</c> (ECMAScript regular expression syntax) as the language of a JSON string, its content
/// written as JSON writes it (a quote as \", a control character escaped). Supported: literal characters and escapes
/// (\t \n \r \f \v \0 \xHH \uHHHH, escaped punctuation), <c>.</c>, classes with ranges and negation, \d \w \s and
/// their negations, groups (capturing, <c>?:</c>, named), alternation, the quantifiers * + ? {n} {n,} {n,m} (lazy
/// forms alike), and ^ and $ at the pattern's ends. As JSON Schema says, a pattern matches anywhere in the string: one
/// without ^ may be preceded by anything, one without $ followed by anything. Refused by name: backreferences,
/// lookaround, word boundaries, Unicode property escapes and anchors elsewhere.
/// </summary>
/// <remarks>
/// Validators differ on \d, \w, \s and <c>.</c> beyond ASCII (ECMAScript's are ASCII for \d and \w; .NET's and
/// Python's are Unicode). What is generated satisfies both readings: \d and \w produce ASCII only; their negations,
/// and negated classes that hold them, produce ASCII only too; \s produces the spaces both agree on, \S nothing either
/// calls a space; <c>.</c> never produces a line terminator of either. Regular expressions without the u flag read a
/// character above U+FFFF as two code units, so <c>.</c> and negated classes produce none, and such a character may
/// stand only as a literal outside a class and without a quantifier of its own. Neither <c>.</c> nor a negated class
/// produces a control character (each would be a six-byte escape in the automaton); one named in a class is produced.
/// </remarks>
internal static class PatternLanguage
{
    /// <summary>The most repetitions a bounded quantifier may ask for (each is a copy in the automaton).</summary>
    public const int MaxRepeat = 256;

    /// <summary>The longest pattern compiled.</summary>
    public const int MaxLength = 4096;

    /// <summary>The most character positions a pattern may hold once its repetitions are counted (nested ones multiply).</summary>
    public const long MaxPositions = 4096;

    /// <summary>The deepest nesting of groups.</summary>
    public const int MaxGroupDepth = 32;

    private const int MaxCodePoint = 0x10FFFF;

    private static readonly (int, int)[] Digits = [('0', '9')];
    private static readonly (int, int)[] Word = [('0', '9'), ('A', 'Z'), ('_', '_'), ('a', 'z')];

    // Spaces both ECMAScript and .NET call \s (ECMAScript adds U+FEFF, .NET adds U+0085): \s produces only these,
    // and \S none of the union.
    private static readonly (int, int)[] SpacesAgreed = [(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)];
    private static readonly (int, int)[] SpacesEither = [.. SpacesAgreed, (0x85, 0x85), (0xFEFF, 0xFEFF)];
    private static readonly (int, int)[] LineTerminators = [(0x0A, 0x0A), (0x0D, 0x0D), (0x85, 0x85), (0x2028, 0x2029)];

    /// <summary>The quoted JSON string whose content the pattern matches.</summary>
    public static Lang Of(string pattern, string path)
    {
        if (pattern.Length > MaxLength)
        {
            throw new SchemaRefusedException($"The 'pattern' at {path} is longer than {MaxLength} characters.", "pattern");
        }

        var parser = new Parser(pattern, path);
        var (anchoredStart, body, anchoredEnd) = parser.Parse();
        var anything = Repeat(JsonLanguage.StringCharacter, 0, null);
        return Seq(Text("\""), anchoredStart ? Epsilon : anything, body, anchoredEnd ? Epsilon : anything, Text("\""));
    }

    /// <summary>
    /// The language of a whole text (no quotes around it) that matches <paramref name="pattern"/> from start to end: as
    /// JSON writes it inside a string, or (<paramref name="raw"/>) as its UTF-8 bytes. ^ and $ at the ends change nothing.
    /// </summary>
    /// <param name="wide">
    /// Read widely rather than narrowly (for checking where one token may run into another, never for generating):
    /// <c>.</c> every character but a line feed, \d \w \s and their negations beyond ASCII too, a negated class every
    /// character it does not name: a superset of what any engine (Rust's, Python's, ECMAScript's) reads.
    /// </param>
    public static Lang Whole(string pattern, string path, bool raw, bool wide = false)
    {
        if (pattern.Length > MaxLength)
        {
            throw new SchemaRefusedException($"The pattern at {path} is longer than {MaxLength} characters.", "pattern");
        }

        return new Parser(pattern, path, raw, wide).Parse().Body;
    }

    /// <summary>A literal text, as JSON writes it inside a string or (<paramref name="raw"/>) as its UTF-8 bytes; letters of either case where <paramref name="ignoreCase"/>.</summary>
    public static Lang Literal(string text, bool raw, bool ignoreCase = false)
    {
        var parts = new List<Lang>();
        for (var i = 0; i < text.Length; i += char.IsSurrogatePair(text, i) ? 2 : 1)
        {
            var c = char.ConvertToUtf32(text, i);
            parts.Add(ignoreCase && c < 0x80 && char.IsAsciiLetter((char)c)
                ? Character([(char.ToLowerInvariant((char)c), char.ToLowerInvariant((char)c)), (char.ToUpperInvariant((char)c), char.ToUpperInvariant((char)c))], raw)
                : Character([(c, c)], raw));
        }

        return Seq([.. parts]);
    }

    /// <summary>One character from a set of code points, as JSON writes it inside a string, or (<paramref name="raw"/>) as its UTF-8 bytes.</summary>
    private static Lang Character(IReadOnlyList<(int Low, int High)> set, bool raw = false)
    {
        var choices = new List<Lang>();
        var plain = new List<(int, int)>();
        foreach (var (low, high) in Normalise(set))
        {
            for (var c = low; c <= Math.Min(high, 0x7F); c++)
            {
                if (!raw && (c is '"' or '\\' || c < 0x20))
                {
                    choices.Add(Text(JsonEscape(c)));
                }
                else
                {
                    plain.Add((c, c));
                }
            }

            if (high > 0x7F)
            {
                choices.AddRange(Utf8(Math.Max(low, 0x80), high));
            }
        }

        if (plain.Count > 0)
        {
            choices.Add(Class([.. Normalise(plain)]));
        }

        return Any(choices);
    }

    private static string JsonEscape(int c) => c switch
    {
        '"' => "\\\"",
        '\\' => "\\\\",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        '\b' => "\\b",
        '\f' => "\\f",
        _ => string.Create(CultureInfo.InvariantCulture, $"\\u{c:x4}"),
    };

    /// <summary>Code points <paramref name="low"/> to <paramref name="high"/> (above ASCII) as UTF-8 byte sequences, surrogates left out.</summary>
    private static IEnumerable<Lang> Utf8(int low, int high)
    {
        foreach (var (from, to) in Subtract([(low, high)], [(0xD800, 0xDFFF)]))
        {
            foreach (var (a, b) in SplitByLength(from, to))
            {
                foreach (var sequence in Utf8Ranges(a, b))
                {
                    yield return sequence;
                }
            }
        }
    }

    private static IEnumerable<(int, int)> SplitByLength(int low, int high)
    {
        foreach (var limit in new[] { 0x7FF, 0xFFFF, MaxCodePoint })
        {
            if (low > high)
            {
                yield break;
            }

            if (low <= limit)
            {
                yield return (low, Math.Min(high, limit));
                low = limit + 1;
            }
        }
    }

    /// <summary>
    /// A range of code points of one encoded length as sequences of byte ranges: split until each byte position
    /// ranges independently (the lower positions span their whole 0x80-0xBF wherever a higher one varies).
    /// </summary>
    private static IEnumerable<Lang> Utf8Ranges(int low, int high)
    {
        var length = Encoding.UTF8.GetByteCount(char.ConvertFromUtf32(low));
        for (var i = 1; i < length; i++)
        {
            var mask = (1 << (6 * i)) - 1;
            if ((low & ~mask) != (high & ~mask))
            {
                if ((low & mask) != 0)
                {
                    return [.. Utf8Ranges(low, low | mask), .. Utf8Ranges((low | mask) + 1, high)];
                }

                if ((high & mask) != mask)
                {
                    return [.. Utf8Ranges(low, (high & ~mask) - 1), .. Utf8Ranges(high & ~mask, high)];
                }
            }
        }

        var from = Encoding.UTF8.GetBytes(char.ConvertFromUtf32(low));
        var to = Encoding.UTF8.GetBytes(char.ConvertFromUtf32(high));
        return [Seq([.. from.Select((b, i) => Class((b, to[i])))])];
    }

    private static List<(int Low, int High)> Normalise(IEnumerable<(int Low, int High)> ranges)
    {
        var merged = new List<(int Low, int High)>();
        foreach (var (low, high) in ranges.OrderBy(r => r.Low))
        {
            if (merged.Count > 0 && low <= merged[^1].High + 1)
            {
                merged[^1] = (merged[^1].Low, Math.Max(merged[^1].High, high));
            }
            else
            {
                merged.Add((low, high));
            }
        }

        return merged;
    }

    private static List<(int Low, int High)> Subtract(IEnumerable<(int Low, int High)> from, IEnumerable<(int Low, int High)> remove)
    {
        var result = Normalise(from);
        foreach (var (low, high) in Normalise(remove))
        {
            result = [.. result.SelectMany<(int Low, int High), (int, int)>(r =>
                high < r.Low || low > r.High ? [r]
                : [.. new[] { (r.Low, low - 1), (high + 1, r.High) }.Where(p => p.Item1 <= p.Item2)])];
        }

        return result;
    }

    /// <summary>A set of code points as a class reads it: ranges, and whether some of them are \d- or \w-like (Unicode-dependent).</summary>
    private sealed class CharSet
    {
        public List<(int Low, int High)> Ranges { get; } = [];

        /// <summary>Holds \d, \w or a negation: negating this set keeps to ASCII (validators read them differently beyond it).</summary>
        public bool UnicodeDependent { get; set; }

        /// <summary>The code points to exclude when negated, beyond <see cref="Ranges"/> (\s's spaces of either reading).</summary>
        public List<(int Low, int High)> NegationExtra { get; } = [];

        /// <summary>The characters and ranges the class names itself (not through \d, \w, \s...).</summary>
        public List<(int Low, int High)> Literals { get; } = [];

        public IReadOnlyList<(int Low, int High)> Negated(bool wide = false) => wide
            ? Subtract([(0, MaxCodePoint)], Literals)
            : Subtract([(0x20, UnicodeDependent ? 0x7F : 0xFFFF)], [.. Ranges, .. NegationExtra]);
    }

    private sealed class Parser(string pattern, string path, bool raw = false, bool wide = false)
    {
        private int _at;
        private int _depth;

        public (bool Start, Lang Body, bool End) Parse()
        {
            var start = Peek('^');
            if (start)
            {
                _at++;
            }

            var (body, positions) = Alternation();
            if (positions > MaxPositions)
            {
                throw Refused($"repetitions that make more than {MaxPositions} character positions");
            }

            var end = false;
            if (Peek('$'))
            {
                end = true;
                _at++;
            }

            if (_at < pattern.Length)
            {
                throw Refused(pattern[_at] == ')' ? "a ')' that closes no group" : $"'{pattern[_at]}' where it is not supported (anchors only at the pattern's ends)");
            }

            return (start, body, end);
        }

        // Each part comes with the character positions it holds (repetitions counted), to bound the automaton.
        private (Lang Lang, long Positions) Alternation()
        {
            var choices = new List<(Lang Lang, long Positions)> { Sequence() };
            while (Peek('|'))
            {
                _at++;
                choices.Add(Sequence());
            }

            return (Any(choices.Select(c => c.Lang)), Bounded(choices.Sum(c => c.Positions)));
        }

        private (Lang Lang, long Positions) Sequence()
        {
            var parts = new List<(Lang Lang, long Positions)>();
            while (_at < pattern.Length && pattern[_at] is not ('|' or ')') && !(pattern[_at] == '$' && _at == pattern.Length - 1))
            {
                parts.Add(Quantified(Atom()));
            }

            return (parts.Count == 0 ? Epsilon : Seq([.. parts.Select(p => p.Lang)]), Bounded(parts.Sum(p => p.Positions)));
        }

        private static long Bounded(long positions) => Math.Min(positions, MaxPositions + 1);

        private (Lang Lang, long Positions) Quantified((Lang Lang, long Positions) atom)
        {
            int min;
            int? max;
            if (Peek('*') || Peek('+') || Peek('?'))
            {
                (min, max) = pattern[_at] switch { '*' => (0, (int?)null), '+' => (1, null), _ => (0, 1) };
                _at++;
            }
            else if (Braces(consume: true) is { } bounds)
            {
                (min, max) = bounds;
            }
            else
            {
                return atom;
            }

            if (Peek('?'))
            {
                _at++; // lazy: the same language
            }

            if (Peek('*') || Peek('+') || Peek('?') || Braces(consume: false) is not null)
            {
                throw Refused("a quantifier on a quantifier");
            }

            var copies = max ?? (min + 1); // an unbounded loop is written once after its minimum
            return (Repeat(atom.Lang, min, max), Bounded(atom.Positions * Math.Max(copies, 1)));
        }

        /// <summary>{n}, {n,} or {n,m} at the cursor (consumed when asked); null when there is none (a brace is then a literal).</summary>
        private (int Min, int? Max)? Braces(bool consume)
        {
            if (!Peek('{'))
            {
                return null;
            }

            // Only digits and one comma may follow: anything else makes the brace a literal one.
            var close = _at + 1;
            while (close < pattern.Length && (char.IsAsciiDigit(pattern[close]) || pattern[close] == ','))
            {
                close++;
            }

            var inside = pattern[(_at + 1)..close];
            var parts = inside.Split(',');
            if (close >= pattern.Length || pattern[close] != '}' || parts.Length > 2)
            {
                return null;
            }

            if (parts[0].Length == 0)
            {
                throw Refused($"the quantifier {{{inside}}} (engines read it differently)");
            }

            if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var min))
            {
                throw Refused($"the quantifier {{{inside}}} (at most {MaxRepeat} repetitions are enforced)");
            }

            int? max = min;
            if (parts.Length == 2)
            {
                if (parts[1].Length == 0)
                {
                    max = null;
                }
                else if (int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var upper))
                {
                    max = upper;
                }
                else
                {
                    throw Refused($"the quantifier {{{inside}}} (at most {MaxRepeat} repetitions are enforced)");
                }
            }

            if (consume)
            {
                if (max < min)
                {
                    throw Refused($"the quantifier {{{inside}}}, whose maximum is below its minimum");
                }

                if (min > MaxRepeat || max > MaxRepeat)
                {
                    throw Refused($"the quantifier {{{inside}}} (at most {MaxRepeat} repetitions are enforced)");
                }

                _at = close + 1;
            }

            return (min, max);
        }

        private (Lang Lang, long Positions) Atom()
        {
            var c = pattern[_at];
            switch (c)
            {
                case '(':
                    _at++;
                    if (++_depth > MaxGroupDepth)
                    {
                        throw Refused($"groups nested more than {MaxGroupDepth} deep");
                    }

                    if (Peek('?'))
                    {
                        if (_at + 1 < pattern.Length && pattern[_at + 1] == ':')
                        {
                            _at += 2;
                        }
                        else if (_at + 2 < pattern.Length && pattern[_at + 1] == '<' && pattern[_at + 2] is not ('=' or '!'))
                        {
                            var close = pattern.IndexOf('>', _at);
                            var name = close < 0 ? throw Refused("a group name that is never closed") : pattern[(_at + 2)..close];
                            if (name.Length == 0 || !(char.IsAsciiLetter(name[0]) || name[0] == '_') || !name.All(n => char.IsAsciiLetterOrDigit(n) || n == '_'))
                            {
                                throw Refused($"the group name '{name}' (letters, digits and underscores)");
                            }

                            _at = close + 1;
                        }
                        else
                        {
                            throw Refused("lookahead and lookbehind");
                        }
                    }

                    var inner = Alternation();
                    if (!Peek(')'))
                    {
                        throw Refused("a group that is never closed");
                    }

                    _at++;
                    _depth--;
                    return inner;
                case '[':
                    return (ClassAtom(), 1);
                case '.':
                    _at++;
                    return (Character(wide ? Subtract([(0, MaxCodePoint)], [(0x0A, 0x0A)]) : Subtract([(0x20, 0xFFFF)], LineTerminators), raw), 1);
                case '\\':
                    return (Character(Escape(inClass: false), raw), 1);
                case '^' or '$':
                    throw Refused($"the anchor '{c}' inside the pattern (only at its ends)");
                case '*' or '+' or '?':
                    throw Refused($"a quantifier '{c}' with nothing to repeat");
                case '{' when Braces(consume: false) is not null:
                    throw Refused("a quantifier with nothing to repeat");
                default:
                    if (char.IsSurrogate(c) && !char.IsSurrogatePair(pattern, _at))
                    {
                        throw Refused("half a character (a lone surrogate)");
                    }

                    var codePoint = char.ConvertToUtf32(pattern, _at);
                    _at += char.IsSurrogatePair(pattern, _at) ? 2 : 1;
                    if (codePoint > 0xFFFF && (Peek('*') || Peek('+') || Peek('?') || Braces(consume: false) is not null))
                    {
                        // Regular expressions read such a character as two code units and repeat the second alone.
                        throw Refused("a quantifier right after a character above U+FFFF (put the character in a group)");
                    }

                    return (Character([(codePoint, codePoint)], raw), 1);
            }
        }

        private Lang ClassAtom()
        {
            _at++; // [
            var negated = Peek('^');
            if (negated)
            {
                _at++;
            }

            if (Peek(']'))
            {
                throw Refused(negated ? "the class [^] (engines read it differently)" : "the class [] (engines read it differently)");
            }

            var set = new CharSet();
            while (_at < pattern.Length && pattern[_at] != ']')
            {
                if (Peek('-') && _at + 1 < pattern.Length && pattern[_at + 1] == '[')
                {
                    throw Refused("'-[' inside a class (.NET reads a class subtraction there)");
                }

                var low = ClassMember(set);
                if (low is null || !Peek('-') || _at + 1 >= pattern.Length || pattern[_at + 1] == ']')
                {
                    continue;
                }

                _at++; // -
                var high = ClassMember(set);
                if (high is null || high < low)
                {
                    throw Refused("a class range whose ends are not characters in order");
                }

                set.Ranges[^1] = (low.Value, high.Value); // the range replaces its two ends
                set.Ranges.RemoveAt(set.Ranges.Count - 2);
                set.Literals[^1] = (low.Value, high.Value);
                set.Literals.RemoveAt(set.Literals.Count - 2);
            }

            if (!Peek(']'))
            {
                throw Refused("a class that is never closed");
            }

            _at++;
            return Character(negated ? set.Negated(wide) : set.Ranges, raw);
        }

        /// <summary>One member of a class: a character (returned, and added) or a class escape (null).</summary>
        private int? ClassMember(CharSet set)
        {
            if (pattern[_at] == '\\')
            {
                var escapeAt = _at;
                var members = Escape(inClass: true, set);
                var single = members is [var (l, h)] && l == h && !(pattern[escapeAt + 1] is 'd' or 'D' or 'w' or 'W' or 's' or 'S');
                set.Ranges.AddRange(members);
                if (single)
                {
                    set.Literals.Add(members[0]);
                }

                return single ? members[0].Low : null;
            }

            if (char.IsSurrogate(pattern[_at]))
            {
                throw Refused("a character above U+FFFF inside a class (regular expressions read it as two code units there)");
            }

            var codePoint = (int)pattern[_at++];
            set.Ranges.Add((codePoint, codePoint));
            set.Literals.Add((codePoint, codePoint));
            return codePoint;
        }

        /// <summary>The code points an escape stands for (cursor on the backslash).</summary>
        private List<(int Low, int High)> Escape(bool inClass, CharSet? set = null)
        {
            if (_at + 1 >= pattern.Length)
            {
                throw Refused("a backslash at the end");
            }

            var c = pattern[_at + 1];
            _at += 2;
            switch (c)
            {
                case 'd' or 'w' or 's' or 'D' or 'W' or 'S' when wide:
                    // Every engine's reading at once: \d and \w any character beyond ASCII too (Unicode's digits and
                    // letters), \s the spaces of any engine (Python's include 0x1C-0x1F); the negations everything
                    // but the ASCII ones. In a class, what the class names for sure (the narrow reading) is kept apart,
                    // so that negating the class still leaves it out.
                    var ascii = c is 'd' or 'D' ? Digits : c is 'w' or 'W' ? Word : SpacesEither;
                    set?.Literals.AddRange(char.IsLower(c) ? (c == 's' ? SpacesAgreed : ascii) : Subtract([(0x20, 0x7F)], ascii));
                    return char.IsLower(c)
                        ? c == 's' ? [.. SpacesEither, (0x1C, 0x1F)] : [.. ascii, (0x80, MaxCodePoint)]
                        : Subtract([(0, MaxCodePoint)], ascii);
                case 'd':
                    MarkUnicodeDependent(set);
                    return [.. Digits];
                case 'w':
                    MarkUnicodeDependent(set);
                    return [.. Word];
                case 's':
                    set?.NegationExtra.AddRange(SpacesEither);
                    return [.. SpacesAgreed];
                case 'D':
                    MarkUnicodeDependent(set);
                    return Subtract([(0x20, 0x7F)], Digits);
                case 'W':
                    MarkUnicodeDependent(set);
                    return Subtract([(0x20, 0x7F)], Word);
                case 'S':
                    MarkUnicodeDependent(set);
                    return Subtract([(0x20, 0x7F)], SpacesEither);
                case 't': return [(9, 9)];
                case 'n': return [(10, 10)];
                case 'v': return [(11, 11)];
                case 'f': return [(12, 12)];
                case 'r': return [(13, 13)];
                case '0' when _at >= pattern.Length || !char.IsAsciiDigit(pattern[_at]): return [(0, 0)];
                case 'b' when inClass: return [(8, 8)];
                case 'x':
                    return [Hex(2)];
                case 'u':
                    return [Hex(4)];
                case 'b' or 'B':
                    throw Refused("word boundaries (\\b, \\B)");
                case 'p' or 'P':
                    throw Refused("Unicode property escapes (\\p, \\P)");
                case 'k' or (>= '1' and <= '9'):
                    throw Refused("backreferences");
                case 'c':
                    throw Refused("control escapes (\\c)");
                default:
                    if (c > 0x7E || char.IsAsciiLetterOrDigit(c) || c is '_' || char.IsControl(c) || c == ' ')
                    {
                        throw Refused(char.IsSurrogate(c) ? "an escaped character above U+FFFF" : $"the escape \\{c} (only ASCII punctuation may be escaped)");
                    }

                    return [(c, c)]; // escaped punctuation stands for itself
            }
        }

        private static void MarkUnicodeDependent(CharSet? set)
        {
            if (set is not null)
            {
                set.UnicodeDependent = true;
            }
        }

        private (int, int) Hex(int digits)
        {
            if (_at + digits > pattern.Length || !int.TryParse(pattern.AsSpan(_at, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value))
            {
                throw Refused($"a \\{(digits == 2 ? 'x' : 'u')} escape without {digits} hex digits");
            }

            _at += digits;
            if (value is >= 0xD800 and <= 0xDFFF)
            {
                throw Refused("a surrogate code unit escaped alone (\\uD800-\\uDFFF)");
            }

            return (value, value);
        }

        private bool Peek(char c) => _at < pattern.Length && pattern[_at] == c;

        private SchemaRefusedException Refused(string what) =>
            new($"The 'pattern' at {path} uses {what}, which cannot be enforced.", "pattern");
    }
}
