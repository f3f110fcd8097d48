using System.Globalization;
using System.Text;
using Appliance.Grammar.Schema;

namespace Appliance.Grammar.Language;

/// <summary>The grammar's text read into definitions (tokens, then statements).</summary>
internal sealed partial class LarkGrammar
{
    /// <summary>Reads the grammar's statements: definitions, %import and %ignore.</summary>
    private sealed class Reader(string grammar)
    {
        private List<Token> _tokens = [];
        private int _at;
        private int _depth;
        private bool _inTerminal;

        public (Dictionary<string, Definition> Definitions, List<(string Name, string Alias, int Line)> Imports, List<Expr> Ignored) Read()
        {
            _tokens = Tokens();
            var definitions = new Dictionary<string, Definition>(StringComparer.Ordinal);
            var imports = new List<(string, string, int)>();
            var ignored = new List<Expr>();
            while (Peek.Kind != Kind.End)
            {
                if (Peek.Kind == Kind.Newline)
                {
                    _at++;
                    continue;
                }

                var first = Peek;
                if (first.Kind == Kind.Directive)
                {
                    _at++;
                    switch (first.Value)
                    {
                        case "import":
                            imports.AddRange(Import(first.Line));
                            break;
                        case "ignore":
                            _inTerminal = true;
                            ignored.Add(Expansions());
                            break;
                        default:
                            throw Refused($"Line {first.Line}: %{first.Value} is not supported (only %import of common terminals and %ignore).");
                    }
                }
                else
                {
                    var definition = DefinitionStatement();
                    if (!definitions.TryAdd(definition.Name, definition))
                    {
                        throw Refused($"Line {definition.Line}: '{definition.Name}' is defined twice.");
                    }
                }

                if (Peek.Kind is not (Kind.Newline or Kind.End))
                {
                    throw Refused($"Line {Peek.Line}: '{Peek.Value}' was not expected here.");
                }
            }

            return (definitions, imports, ignored);
        }

        private Token Peek => _tokens[_at];

        private bool IsSymbol(string value) => Peek.Kind == Kind.Symbol && Peek.Value == value;

        private Token Expect(Kind kind, string what)
        {
            if (Peek.Kind != kind)
            {
                throw Refused($"Line {Peek.Line}: expected {what}, found '{(Peek.Kind == Kind.Newline ? "end of line" : Peek.Value)}'.");
            }

            return _tokens[_at++];
        }

        private void ExpectSymbol(string value)
        {
            if (!IsSymbol(value))
            {
                throw Refused($"Line {Peek.Line}: expected '{value}', found '{(Peek.Kind == Kind.Newline ? "end of line" : Peek.Value)}'.");
            }

            _at++;
        }

        private IEnumerable<(string Name, string Alias, int Line)> Import(int line)
        {
            var path = Expect(Kind.Name, "a module").Value;
            var names = new List<(string, string, int)>();
            if (IsSymbol("("))
            {
                _at++;
                do
                {
                    var name = Expect(Kind.Name, "a terminal's name").Value;
                    names.Add((name, name, line));
                }
                while (IsSymbol(",") && ++_at > 0);
                ExpectSymbol(")");
                if (path != "common")
                {
                    throw Refused($"Line {line}: %import {path} is not supported (only Lark's common terminals).");
                }

                return names;
            }

            if (!path.StartsWith("common.", StringComparison.Ordinal))
            {
                throw Refused($"Line {line}: %import {path} is not supported (only Lark's common terminals).");
            }

            var imported = path["common.".Length..];
            var alias = imported;
            if (IsSymbol("->"))
            {
                _at++;
                alias = Expect(Kind.Name, "an alias").Value;
            }

            return [(imported, alias, line)];
        }

        private Definition DefinitionStatement()
        {
            if (IsSymbol("?") || IsSymbol("!"))
            {
                _at++; // inlining and keeping tokens shape the tree, not the language
            }

            var name = Expect(Kind.Name, "a rule or terminal name");
            var bare = name.Value.TrimStart('_');
            var terminal = bare.Length > 0 && bare.All(c => char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c) || c == '_') && char.IsAsciiLetterUpper(bare[0]);
            var rule = bare.Length > 0 && bare.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '_') && char.IsAsciiLetterLower(bare[0]);
            if (!(terminal || rule) || name.Value.StartsWith("__", StringComparison.Ordinal))
            {
                throw Refused($"Line {name.Line}: '{name.Value}' is neither a rule name (lower case) nor a terminal name (upper case).");
            }

            if (IsSymbol("{"))
            {
                throw Refused($"Line {name.Line}: templates ('{name.Value}{{...}}') are not supported.");
            }

            if (IsSymbol("."))
            {
                _at++; // a priority: which of two matches the parser prefers, not which texts exist
                if (IsSymbol("-"))
                {
                    _at++;
                }

                Expect(Kind.Number, "a priority");
            }

            ExpectSymbol(":");
            _inTerminal = terminal;
            return new Definition(name.Value, Expansions(), terminal, name.Line);
        }

        private Expr Expansions()
        {
            var choices = new List<Expr> { Alias() };
            while (IsSymbol("|"))
            {
                _at++;
                choices.Add(Alias());
            }

            return choices.Count == 1 ? choices[0] : new Alternatives(choices);
        }

        private Expr Alias()
        {
            var items = new List<Expr>();
            while (Peek.Kind is Kind.Name or Kind.String or Kind.Regex || IsSymbol("(") || IsSymbol("["))
            {
                items.Add(Quantified(Atom()));
            }

            if (IsSymbol("->"))
            {
                if (_inTerminal)
                {
                    throw Refused($"Line {Peek.Line}: an alias ('->') inside a terminal.");
                }

                _at++;
                Expect(Kind.Name, "an alias"); // names the tree node, nothing else
            }

            return items.Count == 1 ? items[0] : new Sequence(items);
        }

        private Expr Quantified(Expr atom)
        {
            if (IsSymbol("?") || IsSymbol("*") || IsSymbol("+"))
            {
                var (min, max) = _tokens[_at++].Value switch { "?" => (0, (int?)1), "*" => (0, null), _ => (1, (int?)null) };
                return new Repetition(atom, min, max);
            }

            if (!IsSymbol("~"))
            {
                return atom;
            }

            _at++;
            var low = Count(Expect(Kind.Number, "a repetition count"));
            var high = low;
            if (IsSymbol(".."))
            {
                _at++;
                high = Count(Expect(Kind.Number, "a repetition count"));
            }

            return high < low
                ? throw Refused($"Line {Peek.Line}: the repetition ~ {low}..{high} counts down.")
                : new Repetition(atom, low, high);
        }

        private static int Count(Token number) =>
            int.TryParse(number.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var count) && count <= PatternLanguage.MaxRepeat
                ? count
                : throw Refused($"Line {number.Line}: a repetition count above {PatternLanguage.MaxRepeat}.");

        private Expr Atom()
        {
            var token = _tokens[_at++];
            switch (token.Kind)
            {
                case Kind.Name when IsSymbol("{"):
                    throw Refused($"Line {token.Line}: templates ('{token.Value}{{...}}') are not supported.");
                case Kind.Name:
                    return new Reference(token.Value, token.Line);
                case Kind.Regex:
                    return new Pattern(CheckedRegex(token), token.Line);
                case Kind.String when IsSymbol(".."):
                    _at++;
                    var high = Expect(Kind.String, "the end of a character range");
                    var (from, to) = (Single(token), Single(high));
                    if (from is '^' or '[' or ']' or '\\' or '-' || to is '^' or '[' or ']' or '\\' or '-')
                    {
                        throw Refused($"Line {token.Line}: the range \"{token.Value}\"..\"{high.Value}\" (Lark writes ranges into a regular expression's class, where '^ [ ] \\ -' mean something else).");
                    }

                    return from <= to ? new CharacterRange(from, to, token.Line) : throw Refused($"Line {token.Line}: the range \"{token.Value}\"..\"{high.Value}\" counts down.");
                case Kind.String:
                    return token.Value.Length == 0 ? throw Refused($"Line {token.Line}: an empty string (Lark refuses empty terminals).") : new Text(token.Value, token.Flag);
                case Kind.Symbol when token.Value is "(" or "[":
                    if (++_depth > MaxDepth)
                    {
                        throw Refused($"Line {token.Line}: groups nest more than {MaxDepth} deep.");
                    }

                    var inner = Expansions();
                    ExpectSymbol(token.Value == "(" ? ")" : "]");
                    _depth--;
                    return token.Value == "(" ? inner : new Repetition(inner, 0, 1);
                default:
                    throw Refused($"Line {token.Line}: '{token.Value}' was not expected here.");
            }
        }

        /// <summary>
        /// A regular expression as Lark hands it to Python: anchors would anchor to the whole input there (not to the
        /// token), and Lark decodes \x and \u escapes first, so one that decodes to a metacharacter means that
        /// metacharacter: both are refused rather than read differently.
        /// </summary>
        private static string CheckedRegex(Token regex)
        {
            var pattern = regex.Value;
            if (pattern.StartsWith('^') || (pattern.EndsWith('$') && !pattern.EndsWith("\\$", StringComparison.Ordinal)))
            {
                throw Refused($"Line {regex.Line}: ^ or $ in /{pattern}/ (in Lark they anchor to the whole input, not the token).");
            }

            for (var i = 0; i + 1 < pattern.Length; i++)
            {
                if (pattern[i] != '\\')
                {
                    continue;
                }

                var digits = pattern[i + 1] switch { 'x' => 2, 'u' => 4, _ => 0 };
                if (digits > 0 && i + 2 + digits <= pattern.Length
                    && int.TryParse(pattern.AsSpan(i + 2, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code)
                    && code < 0x80 && "\\^$.|?*+()[]{}-/".Contains((char)code, StringComparison.Ordinal))
                {
                    throw Refused($"Line {regex.Line}: the escape {pattern.Substring(i, 2 + digits)} in /{pattern}/ (Lark decodes it to '{(char)code}' before the regular expression is read).");
                }

                i++;
            }

            return pattern;
        }

        private static int Single(Token text) =>
            text.Value.Length == 1 && !char.IsSurrogate(text.Value[0]) && !text.Flag
                ? text.Value[0]
                : throw Refused($"Line {text.Line}: a character range's ends must be single characters of the basic plane (up to U+FFFF).");

        /// <summary>The grammar's tokens; a line break before a '|' continues the definition above it.</summary>
        private List<Token> Tokens()
        {
            var tokens = new List<Token>();
            var line = 1;
            for (var i = 0; i < grammar.Length;)
            {
                var c = grammar[i];
                if (c == '\n')
                {
                    tokens.Add(new Token(Kind.Newline, "\n", line++));
                    i++;
                }
                else if (char.IsWhiteSpace(c))
                {
                    i++;
                }
                else if (c == '/' && i + 1 < grammar.Length && grammar[i + 1] == '/')
                {
                    while (i < grammar.Length && grammar[i] != '\n')
                    {
                        i++;
                    }
                }
                else if (c == '"')
                {
                    var (value, end) = StringLiteral(i, line);
                    var ignoreCase = end < grammar.Length && grammar[end] == 'i'; // as Lark reads it: "a"ib is "a"i then b
                    tokens.Add(new Token(Kind.String, value, line, ignoreCase));
                    i = ignoreCase ? end + 1 : end;
                }
                else if (c == '/')
                {
                    var (pattern, end) = RegexLiteral(i, line);
                    tokens.Add(new Token(Kind.Regex, pattern, line));
                    i = end;
                }
                else if (c == '%')
                {
                    var end = i + 1;
                    while (end < grammar.Length && char.IsAsciiLetter(grammar[end]))
                    {
                        end++;
                    }

                    tokens.Add(new Token(Kind.Directive, grammar[(i + 1)..end], line));
                    i = end;
                }
                else if (char.IsAsciiLetter(c) || c == '_')
                {
                    var end = i;
                    while (end < grammar.Length && (char.IsAsciiLetterOrDigit(grammar[end]) || grammar[end] == '_' || (grammar[end] == '.' && end + 1 < grammar.Length && char.IsAsciiLetter(grammar[end + 1]) && tokens.LastOrDefault()?.Value == "import")))
                    {
                        end++;
                    }

                    tokens.Add(new Token(Kind.Name, grammar[i..end], line));
                    i = end;
                }
                else if (char.IsAsciiDigit(c))
                {
                    var end = i;
                    while (end < grammar.Length && char.IsAsciiDigit(grammar[end]))
                    {
                        end++;
                    }

                    tokens.Add(new Token(Kind.Number, grammar[i..end], line));
                    i = end;
                }
                else
                {
                    var symbol = grammar.AsSpan(i).StartsWith("..") ? ".." : grammar.AsSpan(i).StartsWith("->") ? "->" : c.ToString();
                    if (symbol.Length == 1 && !":|()[]?*+~.,{}!-".Contains(c, StringComparison.Ordinal))
                    {
                        throw Refused($"Line {line}: '{c}' is not part of Lark's syntax.");
                    }

                    tokens.Add(new Token(Kind.Symbol, symbol, line));
                    i += symbol.Length;
                }
            }

            tokens.Add(new Token(Kind.End, "end of grammar", line));

            // Line breaks before a '|' (past any empty lines) are dropped, in one pass from the end.
            var kept = new List<Token>(tokens.Count);
            var barFollows = false;
            for (var i = tokens.Count - 1; i >= 0; i--)
            {
                if (tokens[i].Kind != Kind.Newline)
                {
                    barFollows = tokens[i] is { Kind: Kind.Symbol, Value: "|" };
                    kept.Add(tokens[i]);
                }
                else if (!barFollows)
                {
                    kept.Add(tokens[i]);
                }
            }

            kept.Reverse();
            return kept;
        }

        /// <summary>A "..." string with the escapes Lark decodes alike (\" \\ \n \t \r \f \xHH \uHHHH; others refused); returns the text and where the literal ends.</summary>
        private (string Value, int End) StringLiteral(int start, int line)
        {
            var text = new StringBuilder();
            for (var i = start + 1; i < grammar.Length && grammar[i] != '\n'; i++)
            {
                var c = grammar[i];
                if (c == '"')
                {
                    var value = text.ToString();
                    for (var at = 0; at < value.Length; at++)
                    {
                        if (char.IsSurrogate(value[at]) && !(char.IsSurrogatePair(value, at) && ++at > 0))
                        {
                            throw Refused($"Line {line}: a string holding half a character (a lone surrogate).");
                        }
                    }

                    return (value, i + 1);
                }

                if (c != '\\')
                {
                    text.Append(c);
                    continue;
                }

                if (++i >= grammar.Length)
                {
                    break;
                }

                switch (grammar[i])
                {
                    case '"' or '\\':
                        text.Append(grammar[i]);
                        break;
                    case 'n':
                        text.Append('\n');
                        break;
                    case 't':
                        text.Append('\t');
                        break;
                    case 'r':
                        text.Append('\r');
                        break;
                    case 'f':
                        text.Append('\f');
                        break;
                    case 'x' or 'u':
                        var digits = grammar[i] == 'x' ? 2 : 4;
                        if (i + digits >= grammar.Length || !int.TryParse(grammar.AsSpan(i + 1, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code))
                        {
                            throw Refused($"Line {line}: a \\{grammar[i]} escape needs {digits} hexadecimal digits.");
                        }

                        if (code is >= 0xD800 and <= 0xDFFF)
                        {
                            throw Refused($"Line {line}: the escape \\{grammar[i]}{grammar.Substring(i + 1, digits)} is half a character (a surrogate).");
                        }

                        text.Append((char)code);
                        i += digits;
                        break;
                    default:
                        throw Refused($"Line {line}: the escape \\{grammar[i]} in a string is not supported.");
                }
            }

            throw Refused($"Line {line}: a string that is never closed.");
        }

        /// <summary>A /.../ regular expression (\/ for a slash inside); flags are refused.</summary>
        private (string Pattern, int End) RegexLiteral(int start, int line)
        {
            var pattern = new StringBuilder();
            for (var i = start + 1; i < grammar.Length && grammar[i] != '\n'; i++)
            {
                var c = grammar[i];
                if (c == '\\' && i + 1 < grammar.Length)
                {
                    pattern.Append(c).Append(grammar[++i]);
                    continue;
                }

                if (c != '/')
                {
                    pattern.Append(c);
                    continue;
                }

                if (i + 1 < grammar.Length && char.IsAsciiLetter(grammar[i + 1]))
                {
                    throw Refused($"Line {line}: regular expression flags ('/{pattern}/{grammar[i + 1]}...') are not supported.");
                }

                return (pattern.ToString(), i + 1);
            }

            throw Refused($"Line {line}: a regular expression that is never closed.");
        }
    }
}
