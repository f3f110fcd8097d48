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
/// <c>%override</c>, <c>%extend</c>, imports from elsewhere, regex flags. A recursive rule is unrolled as deep as the
/// automaton fits, from <see cref="MaxRecursion"/> down to <see cref="MinRecursion"/>: deeper texts of the grammar are
/// not produced, every text produced is one of it.
/// </summary>
internal sealed partial class LarkGrammar
{
    /// <summary>
    /// How many times a rule may be entered inside itself, at most (lists written as recursion at a rule's ends are
    /// loops, not recursion: <see cref="WithoutEndRecursion"/>). Each level multiplies the automaton by the references
    /// on the way round, so the deepest level that fits is taken (<see cref="DeepestRecursionThatFits"/>), never
    /// fewer than <see cref="MinRecursion"/>.
    /// </summary>
    public const int MaxRecursion = 6;

    /// <summary>The least unrolling a grammar gets; one that does not fit unrolled this deep is refused.</summary>
    public const int MinRecursion = 2;

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
    private Func<TokenKey, bool>? _emptyToken;
    private int _recursion = MinRecursion;

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
        catch (UnfoldsTooFar tooFar)
        {
            throw Refused(tooFar.Message);
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
        grammarRead._recursion = grammarRead.DeepestRecursionThatFits();
        return grammarRead;
    }

    /// <summary>
    /// The deepest unrolling, from <see cref="MinRecursion"/> up to <see cref="MaxRecursion"/>, that fits. At the least
    /// depth the automaton must fit (or no request could use the grammar, which is refused). A deeper level is taken
    /// only while the form the decoder uses (the text inside a JSON string, larger than the raw text) stays within
    /// <see cref="DeeperBudget"/>: a forced call holds up to eight copies of it, beside the other tools. Each level's size
    /// is measured, and a level the growth so far says would not fit is not built (building one up to the limit costs
    /// most of a second for a grammar of a few lines).
    /// </summary>
    private int DeepestRecursionThatFits()
    {
        var sizes = new List<(int Parts, int States)>();
        var escapedFits = true;
        for (var depth = MinRecursion - 1; depth <= MaxRecursion; depth++)
        {
            if (depth > MinRecursion)
            {
                if (!escapedFits)
                {
                    return MinRecursion;
                }

                var ((parts, states), (shallowerParts, shallowerStates)) = (sizes[^1], sizes[^2]);
                if (parts == shallowerParts)
                {
                    return MaxRecursion; // nothing was cut one level down: no recursion to unroll, every depth is the same
                }

                if (Grown(parts, shallowerParts) > MaxParts || Grown(states, shallowerStates) > DeeperBudget)
                {
                    return depth - 1;
                }
            }

            try
            {
                var raw = new Compiler(this, raw: true, depth).Start();
                if (raw.IsNothing && depth >= MinRecursion)
                {
                    throw Refused($"The 'start' rule produces no text within {depth} levels of recursion.");
                }

                var matcher = new Automaton.Nfa();
                raw.Emit(matcher, matcher.Start); // the matcher's form must fit
            }
            catch (Exception exception) when (depth > MinRecursion && exception is UnfoldsTooFar or GrammarTooLargeException or InsufficientExecutionStackException)
            {
                return depth - 1;
            }
            catch (UnfoldsTooFar tooFar)
            {
                throw Refused(tooFar.Message);
            }
            catch (GrammarTooLargeException tooLarge)
            {
                throw Refused($"The grammar is too large to enforce: {tooLarge.Message}.");
            }

            try
            {
                var compiler = new Compiler(this, raw: false, depth);
                var escaped = new Automaton.Nfa();
                compiler.Start().Emit(escaped, escaped.Start);
                if (depth > MinRecursion && escaped.Count > DeeperBudget)
                {
                    return depth - 1;
                }

                sizes.Add((compiler.Parts, escaped.Count));
            }
            catch (Exception exception) when (exception is UnfoldsTooFar or GrammarTooLargeException or InsufficientExecutionStackException)
            {
                // Where the decoder's form does not fit even at the least depth, the grammar is still read (and
                // matched) at that depth, as before; a request that forces it then says it is too large.
                if (depth > MinRecursion)
                {
                    return depth - 1;
                }

                escapedFits = false;
            }
        }

        return MaxRecursion;
    }

    /// <summary>The most automaton states a level deeper than <see cref="MinRecursion"/> may take in the decoder's form.</summary>
    private const int DeeperBudget = Automaton.Nfa.MaxStates / (4 * StructuredOutputs.MaxParallelCalls);

    /// <summary>The size one level deeper, if it grows by the factor it grew by from the level before.</summary>
    private static long Grown(int size, int shallower) => shallower <= 0 ? size : (long)size * size / shallower;

    private static string CommonName(string name) => "common__" + name;

    private static Expr Renamed(Expr expr, Func<string, string> rename) => expr switch
    {
        Reference r => r with { Name = rename(r.Name) },
        Alternatives a => new Alternatives([.. a.Choices.Select(choice => Renamed(choice, rename))]),
        Sequence q => new Sequence([.. q.Items.Select(item => Renamed(item, rename))]),
        Repetition r => r with { Inner = Renamed(r.Inner, rename) },
        _ => expr,
    };

    /// <summary>How many times a rule may be entered inside itself in this grammar's automaton (the deepest that fit).</summary>
    public int Recursion => _recursion;

    /// <summary>The language of the grammar's texts: as JSON writes them inside a string, or (<paramref name="raw"/>) as UTF-8.</summary>
    public Lang Compile(bool raw)
    {
        // As deep as Parse found the automaton to fit; written inside a JSON string (escaped) it may be larger.
        for (var depth = _recursion; ; depth--)
        {
            try
            {
                return new Compiler(this, raw, depth).Start();
            }
            catch (Exception exception) when (depth > MinRecursion && exception is UnfoldsTooFar or InsufficientExecutionStackException)
            {
            }
            catch (UnfoldsTooFar tooFar)
            {
                throw Refused(tooFar.Message);
            }
        }
    }

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

    /// <summary>Every part of an expression, itself first.</summary>
    private static IEnumerable<Expr> Parts(Expr expr) => expr switch
    {
        Alternatives a => a.Choices.SelectMany(Parts).Prepend(expr),
        Sequence q => q.Items.SelectMany(Parts).Prepend(expr),
        Repetition r => Parts(r.Inner).Prepend(expr),
        _ => [expr],
    };

    private static IEnumerable<Reference> ReferenceNodes(Expr expr) => Parts(expr).OfType<Reference>();

    private static IEnumerable<string> References(Expr expr) => ReferenceNodes(expr).Select(reference => reference.Name);

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

    private static SchemaRefusedException Refused(string message) => new(message, "grammar");

    /// <summary>The unrolling tried is too large (a shallower one may not be); the message is the refusal at the least depth.</summary>
    private sealed class UnfoldsTooFar(string refusal) : Exception(refusal);

    /// <summary>Builds the language: references expanded (recursion unrolled), ignored terminals allowed between the rules' tokens.</summary>

    private sealed class Compiler(LarkGrammar grammar, bool raw, int recursion, bool wide = false)
    {
        private readonly Dictionary<string, int> _entered = [];
        private readonly Dictionary<string, Lang> _terminals = [];
        private Lang? _gap;
        private Lang? _requiredGap;
        private int _parts;
        private int _depth;

        /// <summary>How many parts the language built so far unfolded into.</summary>
        public int Parts => _parts;

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
                throw new UnfoldsTooFar($"The grammar unfolds into more than {MaxParts} parts (recursion unrolled {Math.Max(recursion, MinRecursion)} deep); simplify it.");
            }

            System.Runtime.CompilerServices.RuntimeHelpers.EnsureSufficientExecutionStack();
            switch (expr)
            {
                case Text text:
                    return PatternLanguage.Literal(text.Value, raw, text.IgnoreCase);
                case CharacterRange range:
                    return PatternLanguage.Whole($"[\\u{range.Low:x4}-\\u{range.High:x4}]", $"line {range.Line}", raw, wide);
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
                    _terminals[definition.Name] = built;
                }

                return built;
            }

            if (++_depth > MaxDepth)
            {
                throw new UnfoldsTooFar($"Rules nest more than {MaxDepth} deep.");
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

        /// <summary>
        /// An ignored token's language, refused when it holds the empty text (ignoring nothing is no gap). A terminal
        /// that may match nothing, such as Codex's /(.*)/, is taken as OpenAI's engine takes it: an optional token.
        /// </summary>
        private static Lang Token(Lang token, string what)
        {
            var nfa = new Automaton.Nfa();
            nfa.Accept = token.Emit(nfa, nfa.Start);
            var dfa = new Automaton.LazyDfa(nfa);
            return dfa.IsAccepting(dfa.Start)
                ? throw Refused($"{what} can match the empty text.")
                : token;
        }

        private Lang Entered(Definition definition, Func<Lang> build)
        {
            var depth = _entered.GetValueOrDefault(definition.Name);
            if (depth > recursion || (definition.Terminal && depth > 0))
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
        Ignored,
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
}
