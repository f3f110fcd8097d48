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

    /// <summary>The deepest nesting of groups in a definition, and of rules inside rules once expanded.</summary>
    public const int MaxDepth = 64;

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

    // Where ignored text is required between two parts of a rule, lest one token run into the next (LarkTokenBoundaries):
    // per sequence, the boundaries after each item; per repetition, between its repeats.
    private readonly Dictionary<Expr, bool[]> _requiredGaps = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<Expr> _requiredSeparators = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<Expr> _guardedItems = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, HashSet<TokenKey>> _first = [];
    private readonly Dictionary<string, HashSet<TokenKey>> _last = [];
    private readonly Dictionary<string, bool> _nullable = [];
    private readonly Dictionary<TokenKey, Expr> _tokenParts = [];

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

        try
        {
            return Read(grammar);
        }
        catch (InsufficientExecutionStackException)
        {
            throw Refused($"The grammar nests too deeply (groups or rules more than {MaxDepth} deep).");
        }
        catch (GrammarTooLargeException tooLarge)
        {
            throw Refused($"The grammar is too large to enforce: {tooLarge.Message}.");
        }
    }

    private static LarkGrammar Read(string grammar)
    {
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

            if (!alias.TrimStart('_').All(c => char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c) || c == '_') || alias.TrimStart('_').Length == 0)
            {
                throw Refused($"Line {line}: the terminal common.{name} imported as '{alias}', which is not a terminal name (upper case).");
            }

            // Its own dependencies under names of their own: a DIGIT the grammar defines is not common's DIGIT.
            definitions[alias] = CommonDefinitions.Value[name] with { Name = alias, Body = Renamed(CommonDefinitions.Value[name].Body, CommonName) };
            foreach (var dependency in CommonDependencies(name))
            {
                definitions.TryAdd(CommonName(dependency), CommonDefinitions.Value[dependency] with { Name = CommonName(dependency), Body = Renamed(CommonDefinitions.Value[dependency].Body, CommonName) });
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

        grammarRead.RefuseRecursiveTerminals();

        grammarRead.FindTokenBoundaries();
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

    /// <summary>
    /// Marks where, inside the rules, a token could run into the next one (the lexer takes a terminal's longest match,
    /// so the two would read as one): the ignored text becomes required there; without %ignore the grammar is
    /// refused. Ignored text that could run into a token, or a token into ignored text, is refused too: neither can be
    /// set apart.
    /// </summary>
    private void FindTokenBoundaries()
    {
        ComputeRuleSets();
        var tokens = new Compiler(this, raw: true, wide: true); // every engine's reading at once: a superset
        var boundaries = new LarkTokenBoundaries(key => tokens.TokenLanguage((TokenKey)key));
        var ignoredFirst = _ignored.SelectMany(FirstOf).Distinct().ToList();
        var ignoredLast = _ignored.SelectMany(LastOf).Distinct().ToList();
        var ruleTokens = _definitions.Values.Where(d => !d.Terminal).SelectMany(d => Leaves(d.Body)).Distinct().ToList();
        foreach (var gap in ignoredLast)
        {
            // (a run of the same ignored terminal reads as one: still ignored)
            if (ruleTokens.Concat(ignoredFirst.Where(other => other != gap)).FirstOrDefault(next => boundaries.RunsInto(gap, next)) is { } swallowed)
            {
                throw Refused($"The ignored {Describe(gap)} may run into {Describe(swallowed)}: the lexer would read them as one token.");
            }
        }

        foreach (var token in ruleTokens)
        {
            if (ignoredFirst.FirstOrDefault(gap => boundaries.RunsInto(token, gap)) is { } gap)
            {
                throw Refused($"{Describe(token)} may run into the ignored {Describe(gap)}: the lexer would read them as one token.");
            }
        }

        bool Conflict(IEnumerable<TokenKey> before, IReadOnlyCollection<TokenKey> after)
        {
            foreach (var last in before)
            {
                if (after.FirstOrDefault(first => boundaries.RunsInto(last, first)) is { } next)
                {
                    return _ignored.Count > 0
                        ? true
                        : throw Refused($"{Describe(last)} may run into {Describe(next)} right after it: the lexer would read the two as one token. Put something required between them (or %ignore whitespace and write it there).");
                }
            }

            return false;
        }

        foreach (var definition in _definitions.Values.Where(d => !d.Terminal))
        {
            foreach (var part in Parts(definition.Body))
            {
                if (part is Sequence sequence)
                {
                    var required = new bool[sequence.Items.Count];
                    for (var i = 0; i + 1 < sequence.Items.Count; i++)
                    {
                        // Each pair of tokens once, at the boundary just before the later one's item (looking back
                        // past items that may be empty), so that an empty item between them does not ask twice.
                        required[i] = Conflict(LastOfUpTo(sequence.Items, i), FirstOf(sequence.Items[i + 1]));
                        if (required[i] && NullableOf(sequence.Items[i + 1]))
                        {
                            _guardedItems.Add(sequence.Items[i + 1]); // required only where the item is not empty
                            required[i] = false;
                        }
                    }

                    _requiredGaps[sequence] = required;
                }
                else if (part is Repetition { Max: not 1 } repetition && Conflict(LastOf(repetition.Inner), FirstOf(repetition.Inner)))
                {
                    _requiredSeparators.Add(repetition);
                }
            }
        }
    }

    private static IEnumerable<Expr> Parts(Expr expr) => expr switch
    {
        Alternatives a => a.Choices.SelectMany(Parts).Prepend(expr),
        Sequence q => q.Items.SelectMany(Parts).Prepend(expr),
        Repetition r => Parts(r.Inner).Prepend(expr),
        _ => [expr],
    };

    /// <summary>The tokens a rule's body names itself (terminals, strings, expressions, ranges), rules not followed.</summary>
    private IEnumerable<TokenKey> Leaves(Expr expr) => Parts(expr).Where(part => part is Text or Pattern or CharacterRange || (part is Reference r && _definitions[r.Name].Terminal)).Select(Key);

    private static string Describe(TokenKey token) => token.Kind switch
    {
        TokenKind.Terminal => $"the terminal {token.Value}",
        TokenKind.Text => $"\"{token.Value}\"",
        TokenKind.Pattern => $"/{token.Value}/",
        _ => "a character range",
    };

    private TokenKey Key(Expr token)
    {
        var key = token switch
        {
            Reference r => new TokenKey(TokenKind.Terminal, r.Name),
            Text t => new TokenKey(TokenKind.Text, t.Value, t.IgnoreCase),
            Pattern p => new TokenKey(TokenKind.Pattern, p.Regex),
            CharacterRange c => new TokenKey(TokenKind.Range, $"{c.Low}-{c.High}"),
            _ => throw new InvalidOperationException($"not a token: {token}"),
        };
        _tokenParts.TryAdd(key, token);
        return key;
    }

    /// <summary>
    /// Per rule: whether it may be empty, and the tokens it may start and end with, found together until nothing
    /// changes (each rule's sets computed once, so rules that name each other many times cost nothing more).
    /// </summary>
    private void ComputeRuleSets()
    {
        var rules = _definitions.Values.Where(d => !d.Terminal).ToList();
        foreach (var rule in rules)
        {
            (_first[rule.Name], _last[rule.Name], _nullable[rule.Name]) = ([], [], false);
        }

        for (var changed = true; changed;)
        {
            changed = false;
            foreach (var rule in rules)
            {
                if (!_nullable[rule.Name] && NullableOf(rule.Body))
                {
                    (_nullable[rule.Name], changed) = (true, true);
                }

                foreach (var token in FirstOf(rule.Body))
                {
                    changed |= _first[rule.Name].Add(token);
                }

                foreach (var token in LastOf(rule.Body))
                {
                    changed |= _last[rule.Name].Add(token);
                }
            }
        }
    }

    private bool NullableOf(Expr expr) => expr switch
    {
        Reference r when !_definitions[r.Name].Terminal => _nullable.GetValueOrDefault(r.Name),
        Alternatives a => a.Choices.Count == 0 || a.Choices.Any(NullableOf),
        Sequence q => q.Items.All(NullableOf),
        Repetition r => r.Min == 0 || NullableOf(r.Inner),
        _ => false, // a token: never empty (zero-width terminals are refused)
    };

    private IReadOnlyCollection<TokenKey> FirstOf(Expr expr) => expr switch
    {
        Reference r when !_definitions[r.Name].Terminal => _first.GetValueOrDefault(r.Name) ?? [],
        Alternatives a => [.. a.Choices.SelectMany(FirstOf).Distinct()],
        Sequence q => FirstOfFrom(q.Items, 0),
        Repetition r => FirstOf(r.Inner),
        _ => [Key(expr)],
    };

    private IReadOnlyCollection<TokenKey> LastOf(Expr expr) => expr switch
    {
        Reference r when !_definitions[r.Name].Terminal => _last.GetValueOrDefault(r.Name) ?? [],
        Alternatives a => [.. a.Choices.SelectMany(LastOf).Distinct()],
        Sequence q => LastOfUpTo(q.Items, q.Items.Count - 1),
        Repetition r => LastOf(r.Inner),
        _ => [Key(expr)],
    };

    private List<TokenKey> FirstOfFrom(IReadOnlyList<Expr> items, int from)
    {
        var found = new HashSet<TokenKey>();
        for (var i = from; i < items.Count; i++)
        {
            found.UnionWith(FirstOf(items[i]));
            if (!NullableOf(items[i]))
            {
                break;
            }
        }

        return [.. found];
    }

    private List<TokenKey> LastOfUpTo(IReadOnlyList<Expr> items, int upTo)
    {
        var found = new HashSet<TokenKey>();
        for (var i = upTo; i >= 0; i--)
        {
            found.UnionWith(LastOf(items[i]));
            if (!NullableOf(items[i]))
            {
                break;
            }
        }

        return [.. found];
    }

    private static string CommonName(string name) => "common__" + name;

    private static Expr Renamed(Expr expr, Func<string, string> rename) => expr switch
    {
        Reference r => r with { Name = rename(r.Name) },
        Alternatives a => new Alternatives([.. a.Choices.Select(choice => Renamed(choice, rename))]),
        Sequence q => new Sequence([.. q.Items.Select(item => Renamed(item, rename))]),
        Repetition r => r with { Inner = Renamed(r.Inner, rename) },
        _ => expr,
    };

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

    /// <summary>Terminals are regular: one made of itself (directly or not) is refused, as Lark refuses it.</summary>
    private void RefuseRecursiveTerminals()
    {
        var done = new HashSet<string>();
        var path = new HashSet<string>();

        void Visit(string name)
        {
            if (done.Contains(name))
            {
                return;
            }

            if (!path.Add(name))
            {
                throw Refused($"Line {_definitions[name].Line}: the terminal {name} is made of itself; terminals cannot recurse.");
            }

            foreach (var reference in References(_definitions[name].Body).Where(r => _definitions[r].Terminal))
            {
                Visit(reference);
            }

            path.Remove(name);
            done.Add(name);
        }

        foreach (var terminal in _definitions.Values.Where(d => d.Terminal))
        {
            Visit(terminal.Name);
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
    private sealed class Compiler(LarkGrammar grammar, bool raw, bool wide = false)
    {
        private readonly Dictionary<string, int> _entered = [];
        private readonly Dictionary<string, Lang> _terminals = [];
        private Lang? _gap;
        private Lang? _requiredGap;
        private int _parts;
        private int _depth;

        public Lang Start()
        {
            var gap = Gap();
            return Seq(gap, Build(grammar._definitions["start"].Body, inRule: true), gap);
        }

        /// <summary>What may stand between two tokens: any run of ignored terminals (nothing without %ignore).</summary>
        private Lang Gap() => _gap ??= grammar._ignored.Count == 0
            ? Epsilon
            : Repeat(Any(grammar._ignored.Select(ignored => Token(Build(ignored, inRule: false), "%ignore"))), 0, null);

        /// <summary>Ignored text required: between tokens that would otherwise run into each other.</summary>
        private Lang RequiredGap() => _requiredGap ??= grammar._ignored.Count == 0
            ? Epsilon
            : Repeat(Any(grammar._ignored.Select(ignored => Build(ignored, inRule: false))), 1, null);

        /// <summary>A token's language (a terminal by name, an anonymous string or regular expression), for <see cref="LarkTokenBoundaries"/>.</summary>
        public Lang TokenLanguage(TokenKey token) => token.Kind == TokenKind.Terminal
            ? Expand(grammar._definitions[token.Value], inRule: false)
            : Build(grammar._tokenParts[token], inRule: false);

        private Lang Build(Expr expr, bool inRule)
        {
            if (++_parts > MaxParts)
            {
                throw Refused($"The grammar unfolds into more than {MaxParts} parts (recursion is unrolled {MaxRecursion} deep); simplify it.");
            }

            System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
            switch (expr)
            {
                case Text text:
                    return PatternLanguage.Literal(text.Value, raw, text.IgnoreCase);
                case CharacterRange range:
                    return PatternLanguage.Whole($"[\\u{range.Low:x4}-\\u{range.High:x4}]", $"line {range.Line}", raw, wide);
                case Pattern pattern when inRule:
                    return Token(PatternLanguage.Whole(pattern.Regex, $"line {pattern.Line}", raw, wide), $"Line {pattern.Line}: the regular expression /{pattern.Regex}/");
                case Pattern pattern:
                    return PatternLanguage.Whole(pattern.Regex, $"line {pattern.Line}", raw, wide);
                case Alternatives alternatives:
                    return Any(alternatives.Choices.Select(choice => Build(choice, inRule)).ToList());
                case Sequence sequence:
                    // An item that may be empty but must be set apart when it is not: nothing, or ignored text and it.
                    var items = sequence.Items
                        .Select(item => inRule && grammar._guardedItems.Contains(item) ? Any(Epsilon, Seq(RequiredGap(), Build(item, inRule))) : Build(item, inRule))
                        .ToList();
                    var required = grammar._requiredGaps.GetValueOrDefault(sequence);
                    return inRule && grammar._ignored.Count > 0
                        ? Seq([.. items.SelectMany((item, i) => i == 0 ? new[] { item } : [required?[i - 1] == true ? RequiredGap() : Gap(), item])])
                        : Seq([.. items]);
                case Repetition repetition:
                    var inner = Build(repetition.Inner, inRule);
                    return inRule && grammar._ignored.Count > 0
                        ? SeparatedList(inner, grammar._requiredSeparators.Contains(repetition) ? RequiredGap() : Gap(), repetition.Min, repetition.Max)
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
                    if (!built.IsNothing)
                    {
                        Token(built, $"Line {definition.Line}: the terminal {definition.Name}");
                    }

                    _terminals[definition.Name] = built;
                }

                return built;
            }

            if (++_depth > MaxDepth)
            {
                throw Refused($"Rules nest more than {MaxDepth} deep.");
            }

            try
            {
                return Entered(definition, () => Build(definition.Body, inRule));
            }
            finally
            {
                _depth--;
            }
        }

        /// <summary>A token's language, refused when it holds the empty text (Lark refuses zero-width terminals).</summary>
        private static Lang Token(Lang token, string what)
        {
            var nfa = new Automaton.Nfa();
            nfa.Accept = token.Emit(nfa, nfa.Start);
            var dfa = new Automaton.LazyDfa(nfa);
            return dfa.IsAccepting(dfa.Start)
                ? throw Refused($"{what} can match the empty text (Lark refuses zero-width terminals).")
                : token;
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

    private enum TokenKind
    {
        Terminal,
        Text,
        Pattern,
        Range,
    }

    /// <summary>A token by what it is: a terminal by its name, a string, expression or range by its text (equal ones are one).</summary>
    private sealed record TokenKey(TokenKind Kind, string Value, bool IgnoreCase = false);

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
