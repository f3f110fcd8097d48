using System.Globalization;
using System.Text;
using Appliance.Grammar.Schema;
using static Appliance.Grammar.Language.Lang;

namespace Appliance.Grammar.Language;

/// <summary>
/// A Lark grammar (the syntax of OpenAI's grammar-constrained custom tools) read as the language of its texts, the start
/// rule <c>start</c>. Supported: rules and terminals (priorities, <c>?</c>/<c>!</c> prefixes and <c>-&gt;</c> aliases
/// accepted and of no effect on the language), alternatives, groups, <c>[optional]</c>, <c>? * +</c>, <c>~ n</c> and
/// <c>~ n..m</c>, strings (with the <c>i</c> flag), character ranges <c>"a".."z"</c>, regular expressions without flags
/// (the pattern language of structured outputs), <c>%import common</c> terminals and <c>%ignore</c> (the ignored
/// terminals may stand between any two tokens of the rules). Refused by name: templates, <c>%declare</c>,
/// <c>%override</c>, <c>%extend</c>, imports from elsewhere, regex flags. A recursive rule is unrolled
/// <see cref="MaxRecursion"/> deep: deeper texts of the grammar are not produced, every text produced is one of it.
/// </summary>
internal sealed class LarkGrammar
{
    /// <summary>
    /// How many times a rule may be entered inside itself (lists written as recursion at a rule's ends are loops, not
    /// recursion: <see cref="WithoutEndRecursion"/>). Each level multiplies the automaton by the references on the
    /// way round, so the depth is small: two levels of parentheses inside an expression, for example.
    /// </summary>
    public const int MaxRecursion = 2;

    /// <summary>The longest grammar read.</summary>
    public const int MaxLength = 32_768;

    /// <summary>The most parts a grammar may unfold into once its references are expanded.</summary>
    public const int MaxParts = 100_000;

    // Lark's common.lark, the terminals a grammar may import (as Lark defines them, in Lark's own syntax).
    private const string Common = """
        DIGIT: "0".."9"
        HEXDIGIT: "a".."f" | "A".."F" | DIGIT
        INT: DIGIT+
        SIGNED_INT: ["+"|"-"] INT
        DECIMAL: INT "." INT? | "." INT
        _EXP: ("e"|"E") SIGNED_INT
        FLOAT: INT _EXP | DECIMAL _EXP?
        SIGNED_FLOAT: ["+"|"-"] FLOAT
        NUMBER: FLOAT | INT
        SIGNED_NUMBER: ["+"|"-"] NUMBER
        ESCAPED_STRING: "\"" (/[^"\\\n]/ | "\\" /[^\n]/)* "\""
        LCASE_LETTER: "a".."z"
        UCASE_LETTER: "A".."Z"
        LETTER: UCASE_LETTER | LCASE_LETTER
        WORD: LETTER+
        CNAME: ("_"|LETTER) ("_"|LETTER|DIGIT)*
        WS_INLINE: (" "|/\t/)+
        WS: /[ \t\f\r\n]/+
        CR: /\r/
        LF: /\n/
        NEWLINE: (CR? LF)+
        """;

    private static readonly Lazy<Dictionary<string, Definition>> CommonDefinitions = new(() => new Reader(Common).Read().Definitions);

    private readonly Dictionary<string, Definition> _definitions;
    private readonly List<Expr> _ignored;

    private LarkGrammar(Dictionary<string, Definition> definitions, List<Expr> ignored)
    {
        _definitions = definitions;
        _ignored = ignored;
    }

    /// <summary>Reads a grammar; throws <see cref="SchemaRefusedException"/> saying what cannot be read or enforced.</summary>
    public static LarkGrammar Parse(string grammar)
    {
        if (grammar.Length > MaxLength)
        {
            throw Refused($"The grammar is longer than {MaxLength} characters.");
        }

        var (definitions, imports, ignored) = new Reader(grammar).Read();
        foreach (var (name, alias, line) in imports)
        {
            if (!CommonDefinitions.Value.ContainsKey(name) || name.StartsWith('_'))
            {
                throw Refused($"Line {line}: common.{name} is not among the terminals of common.lark the appliance knows ({string.Join(", ", CommonDefinitions.Value.Keys.Where(k => !k.StartsWith('_')))}).");
            }

            if (definitions.ContainsKey(alias))
            {
                throw Refused($"Line {line}: '{alias}' is defined twice.");
            }

            definitions[alias] = CommonDefinitions.Value[name] with { Name = alias };
            foreach (var dependency in CommonDependencies(name))
            {
                definitions.TryAdd(dependency, CommonDefinitions.Value[dependency]);
            }
        }

        if (!definitions.TryGetValue("start", out var start) || start.Terminal)
        {
            throw Refused("The grammar has no 'start' rule.");
        }

        foreach (var definition in definitions.Values.Where(d => !d.Terminal).ToList())
        {
            definitions[definition.Name] = definition with { Body = WithoutEndRecursion(definition) };
        }

        var grammarRead = new LarkGrammar(definitions, ignored);
        foreach (var definition in definitions.Values)
        {
            grammarRead.CheckReferences(definition.Body, definition);
        }

        foreach (var ignore in ignored)
        {
            grammarRead.CheckReferences(ignore, null);
        }

        var language = grammarRead.Compile(raw: true);
        if (language.IsNothing)
        {
            throw Refused($"The 'start' rule produces no text within {MaxRecursion} levels of recursion.");
        }

        try
        {
            var nfa = new Automaton.Nfa();
            language.Emit(nfa, nfa.Start); // the automaton must fit, or no request could use it
        }
        catch (GrammarTooLargeException tooLarge)
        {
            throw Refused($"The grammar is too large to enforce: {tooLarge.Message}.");
        }

        return grammarRead;
    }

    /// <summary>The language of the grammar's texts: as JSON writes them inside a string, or (<paramref name="raw"/>) as UTF-8.</summary>
    public Lang Compile(bool raw) => new Compiler(this, raw).Start();

    /// <summary>
    /// A rule that recurses only at its ends, the way lists are written (<c>sum: sum "+" product | product</c>), as
    /// the loop it stands for: R → R a | b R | c is b* c a*, exactly, with no depth to unroll. Other recursion is
    /// left as it is (and unrolled).
    /// </summary>
    private static Expr WithoutEndRecursion(Definition rule)
    {
        var choices = rule.Body is Alternatives alternatives ? alternatives.Choices : [rule.Body];
        var (tails, heads, bases) = (new List<Expr>(), new List<Expr>(), new List<Expr>());
        foreach (var choice in choices)
        {
            var items = choice is Sequence sequence ? sequence.Items : [choice];
            var selfReferences = items.Count(item => item is Reference r && r.Name == rule.Name);
            var deeper = items.Any(item => item is not Reference && References(item).Contains(rule.Name));
            if (selfReferences == 1 && !deeper && items.Count > 1 && items[0] is Reference first && first.Name == rule.Name)
            {
                tails.Add(new Sequence([.. items.Skip(1)]));
            }
            else if (selfReferences == 1 && !deeper && items.Count > 1 && items[^1] is Reference last && last.Name == rule.Name)
            {
                heads.Add(new Sequence([.. items.SkipLast(1)]));
            }
            else
            {
                bases.Add(choice);
            }
        }

        if (tails.Count == 0 && heads.Count == 0)
        {
            return rule.Body;
        }

        return new Sequence([
            new Repetition(new Alternatives(heads), 0, null),
            bases.Count == 1 ? bases[0] : new Alternatives(bases),
            new Repetition(new Alternatives(Factored(tails)), 0, null),
        ]);
    }

    /// <summary>
    /// Choices that end with the same reference, as one choice (<c>"+" product | "-" product</c> as
    /// <c>("+" | "-") product</c>): each reference is a copy of its rule in the automaton, so fewer is smaller.
    /// </summary>
    private static List<Expr> Factored(List<Expr> choices) =>
        [.. choices
            .GroupBy(choice => choice is Sequence { Items: [.., Reference last] } ? last.Name : null)
            .SelectMany(group => group.Key is null || group.Count() == 1
                ? group.ToList()
                : [new Sequence([
                    new Alternatives([.. group.Select(choice => (Expr)new Sequence([.. ((Sequence)choice).Items.SkipLast(1)]))]),
                    ((Sequence)group.First()).Items[^1]])])];

    private static IEnumerable<string> CommonDependencies(string name)
    {
        var seen = new HashSet<string>();
        var pending = new Stack<Expr>([CommonDefinitions.Value[name].Body]);
        while (pending.TryPop(out var expr))
        {
            foreach (var reference in References(expr))
            {
                if (seen.Add(reference))
                {
                    yield return reference;
                    pending.Push(CommonDefinitions.Value[reference].Body);
                }
            }
        }
    }

    private static IEnumerable<string> References(Expr expr) => expr switch
    {
        Reference r => [r.Name],
        Alternatives a => a.Choices.SelectMany(References),
        Sequence s => s.Items.SelectMany(References),
        Repetition r => References(r.Inner),
        _ => [],
    };

    private void CheckReferences(Expr expr, Definition? owner)
    {
        foreach (var reference in ReferenceNodes(expr))
        {
            if (!_definitions.TryGetValue(reference.Name, out var target))
            {
                throw Refused($"Line {reference.Line}: '{reference.Name}' is not defined.");
            }

            if ((owner?.Terminal ?? true) && !target.Terminal)
            {
                throw Refused($"Line {reference.Line}: a terminal (or %ignore) refers to the rule '{reference.Name}'; terminals are made of terminals.");
            }
        }
    }

    private static IEnumerable<Reference> ReferenceNodes(Expr expr) => expr switch
    {
        Reference r => [r],
        Alternatives a => a.Choices.SelectMany(ReferenceNodes),
        Sequence s => s.Items.SelectMany(ReferenceNodes),
        Repetition r => ReferenceNodes(r.Inner),
        _ => [],
    };

    private static SchemaRefusedException Refused(string message) => new(message, "grammar");

    /// <summary>Builds the language: references expanded (recursion unrolled), ignored terminals allowed between the rules' tokens.</summary>
    private sealed class Compiler(LarkGrammar grammar, bool raw)
    {
        private readonly Dictionary<string, int> _entered = [];
        private readonly Dictionary<string, Lang> _terminals = [];
        private Lang? _gap;
        private int _parts;

        public Lang Start()
        {
            var gap = Gap();
            return Seq(gap, Build(grammar._definitions["start"].Body, inRule: true), gap);
        }

        /// <summary>What may stand between two tokens: any run of ignored terminals (nothing without %ignore).</summary>
        private Lang Gap() => _gap ??= grammar._ignored.Count == 0
            ? Epsilon
            : Repeat(Any(grammar._ignored.Select(ignored => Build(ignored, inRule: false))), 0, null);

        private Lang Build(Expr expr, bool inRule)
        {
            if (++_parts > MaxParts)
            {
                throw Refused($"The grammar unfolds into more than {MaxParts} parts (recursion is unrolled {MaxRecursion} deep); simplify it.");
            }

            switch (expr)
            {
                case Text text:
                    return PatternLanguage.Literal(text.Value, raw, text.IgnoreCase);
                case CharacterRange range:
                    return PatternLanguage.Whole($"[\\u{range.Low:x4}-\\u{range.High:x4}]", $"line {range.Line}", raw);
                case Pattern pattern:
                    return PatternLanguage.Whole(pattern.Regex, $"line {pattern.Line}", raw);
                case Alternatives alternatives:
                    return Any(alternatives.Choices.Select(choice => Build(choice, inRule)).ToList());
                case Sequence sequence:
                    var items = sequence.Items.Select(item => Build(item, inRule)).ToList();
                    return inRule && grammar._ignored.Count > 0
                        ? Seq([.. items.SelectMany((item, i) => i == 0 ? new[] { item } : [Gap(), item])])
                        : Seq([.. items]);
                case Repetition repetition:
                    var inner = Build(repetition.Inner, inRule);
                    return inRule && grammar._ignored.Count > 0
                        ? SeparatedList(inner, Gap(), repetition.Min, repetition.Max)
                        : Repeat(inner, repetition.Min, repetition.Max);
                case Reference reference:
                    return Expand(grammar._definitions[reference.Name], inRule);
                default:
                    throw new InvalidOperationException($"unknown part {expr}");
            }
        }

        private Lang Expand(Definition definition, bool inRule)
        {
            if (definition.Terminal)
            {
                // A terminal's text is one token: nothing ignored inside it, and the same wherever it is used.
                if (!_terminals.TryGetValue(definition.Name, out var built))
                {
                    built = Entered(definition, () => Build(definition.Body, inRule: false));
                    _terminals[definition.Name] = built;
                }

                return built;
            }

            return Entered(definition, () => Build(definition.Body, inRule));
        }

        private Lang Entered(Definition definition, Func<Lang> build)
        {
            var depth = _entered.GetValueOrDefault(definition.Name);
            if (depth > MaxRecursion || (definition.Terminal && depth > 0))
            {
                return Nothing; // deeper than unrolled (terminals may not recurse at all)
            }

            _entered[definition.Name] = depth + 1;
            try
            {
                return build();
            }
            finally
            {
                _entered[definition.Name] = depth;
            }
        }
    }

    private abstract record Expr;

    private sealed record Alternatives(IReadOnlyList<Expr> Choices) : Expr;

    private sealed record Sequence(IReadOnlyList<Expr> Items) : Expr;

    private sealed record Repetition(Expr Inner, int Min, int? Max) : Expr;

    private sealed record Text(string Value, bool IgnoreCase) : Expr;

    private sealed record CharacterRange(int Low, int High, int Line) : Expr;

    private sealed record Pattern(string Regex, int Line) : Expr;

    private sealed record Reference(string Name, int Line) : Expr;

    private sealed record Definition(string Name, Expr Body, bool Terminal, int Line);

    private enum Kind
    {
        Name,
        String,
        Regex,
        Number,
        Directive,
        Symbol,
        Newline,
        End,
    }

    private sealed record Token(Kind Kind, string Value, int Line, bool Flag = false);

    /// <summary>Reads the grammar's statements: definitions, %import and %ignore.</summary>
    private sealed class Reader(string grammar)
    {
        private List<Token> _tokens = [];
        private int _at;

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
            var terminal = name.Value.TrimStart('_') is { Length: > 0 } bare && char.IsAsciiLetterUpper(bare[0]);
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
                    return new Pattern(token.Value, token.Line);
                case Kind.String when IsSymbol(".."):
                    _at++;
                    var high = Expect(Kind.String, "the end of a character range");
                    var (from, to) = (Single(token), Single(high));
                    return from <= to ? new CharacterRange(from, to, token.Line) : throw Refused($"Line {token.Line}: the range \"{token.Value}\"..\"{high.Value}\" counts down.");
                case Kind.String:
                    return token.Value.Length == 0 ? new Sequence([]) : new Text(token.Value, token.Flag);
                case Kind.Symbol when token.Value is "(" or "[":
                    var inner = Expansions();
                    ExpectSymbol(token.Value == "(" ? ")" : "]");
                    return token.Value == "(" ? inner : new Repetition(inner, 0, 1);
                default:
                    throw Refused($"Line {token.Line}: '{token.Value}' was not expected here.");
            }
        }

        private static int Single(Token text) =>
            text.Value.Length > 0 && text.Value.Length == (char.IsSurrogatePair(text.Value, 0) ? 2 : 1) && !text.Flag
                ? char.ConvertToUtf32(text.Value, 0)
                : throw Refused($"Line {text.Line}: a character range's ends must be single characters.");

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
                    var ignoreCase = end < grammar.Length && grammar[end] == 'i' && (end + 1 == grammar.Length || !char.IsAsciiLetterOrDigit(grammar[end + 1]));
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
            return [.. tokens.Where((token, index) => token.Kind != Kind.Newline || !ContinuedAt(tokens, index + 1))];
        }

        private static bool ContinuedAt(List<Token> tokens, int index)
        {
            while (tokens[index].Kind == Kind.Newline)
            {
                index++;
            }

            return tokens[index] is { Kind: Kind.Symbol, Value: "|" };
        }

        /// <summary>A "..." string with its escapes (\" \\ \n \t \r \f \v \0 \xHH \uHHHH); returns the text and where the literal ends.</summary>
        private (string Value, int End) StringLiteral(int start, int line)
        {
            var text = new StringBuilder();
            for (var i = start + 1; i < grammar.Length && grammar[i] != '\n'; i++)
            {
                var c = grammar[i];
                if (c == '"')
                {
                    return (text.ToString(), i + 1);
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
                    case '"' or '\\' or '\'':
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
                    case 'v':
                        text.Append('\v');
                        break;
                    case '0':
                        text.Append('\0');
                        break;
                    case 'x' or 'u':
                        var digits = grammar[i] == 'x' ? 2 : 4;
                        if (i + digits >= grammar.Length || !int.TryParse(grammar.AsSpan(i + 1, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code))
                        {
                            throw Refused($"Line {line}: a \\{grammar[i]} escape needs {digits} hexadecimal digits.");
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
