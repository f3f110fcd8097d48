namespace Appliance.Prompting.Jinja;

/// <summary>
/// Parses template segments into statements and expressions, with Jinja's precedence:
/// conditional &lt; or &lt; and &lt; not &lt; comparison/in/is &lt; ~ &lt; + - &lt; * / // % &lt; ** &lt; unary &lt; postfix and filters.
/// Unknown statements, filters and tests fail here, at model load, never at request time.
/// </summary>
internal sealed class JinjaParser
{
    private readonly List<Segment> _segments;
    private int _position;
    private List<Token> _tokens = [];
    private int _token;
    private int _line;
    private int _loops; // for-loop bodies being parsed: break and continue belong in one

    private JinjaParser(List<Segment> segments) => _segments = segments;

    public static IReadOnlyList<Node> Parse(string source)
    {
        var parser = new JinjaParser(JinjaLexer.Split(source));
        var (body, end) = parser.ParseBlock();
        return end is null ? body : throw new ChatTemplateException($"line {parser._line}: unexpected '{{% {end} %}}'");
    }

    /// <summary>Parses nodes until a statement whose keyword is one of <paramref name="ends"/> (returned) or the end.</summary>
    private (List<Node> Body, string? End) ParseBlock(params string[] ends)
    {
        var nodes = new List<Node>();
        while (_position < _segments.Count)
        {
            var segment = _segments[_position++];
            _line = segment.Line;
            switch (segment.Kind)
            {
                case SegmentKind.Text:
                    nodes.Add(new TextNode(segment.Content));
                    break;
                case SegmentKind.Output:
                    Begin(segment);
                    nodes.Add(new OutputNode(ParseExpression()));
                    ExpectEnd();
                    break;
                default:
                    Begin(segment);
                    var keyword = Next().Text;
                    if (ends.Contains(keyword))
                    {
                        return (nodes, keyword);
                    }

                    nodes.Add(ParseStatement(keyword));
                    break;
            }
        }

        return ends.Length == 0 ? (nodes, null) : throw new ChatTemplateException($"line {_line}: missing '{{% {ends[^1]} %}}'");
    }

    private Node ParseStatement(string keyword)
    {
        switch (keyword)
        {
            case "if":
                return ParseIf();
            case "for":
                return ParseFor();
            case "set":
                return ParseSet();
            case "macro":
                return ParseMacro();
            case "generation":
                ExpectEnd();
                var (body, _) = ParseBlock("endgeneration");
                ExpectEnd();
                return new BlockNode(body);
            case "break" or "continue":
                ExpectEnd();
                return _loops > 0 ? new LoopControlNode(keyword == "break") : throw new ChatTemplateException($"line {_line}: '{keyword}' outside a loop");
            default:
                throw new ChatTemplateException($"line {_line}: unsupported statement '{keyword}'");
        }
    }

    private IfNode ParseIf()
    {
        var branches = new List<(Expr, IReadOnlyList<Node>)>();
        var condition = ParseExpression();
        ExpectEnd();
        while (true)
        {
            var (body, end) = ParseBlock("elif", "else", "endif");
            branches.Add((condition, body));
            if (end == "elif")
            {
                condition = ParseExpression();
                ExpectEnd();
                continue;
            }

            if (end == "else")
            {
                ExpectEnd();
                var (elseBody, _) = ParseBlock("endif");
                ExpectEnd();
                return new IfNode(branches, elseBody);
            }

            ExpectEnd();
            return new IfNode(branches, null);
        }
    }

    private ForNode ParseFor()
    {
        var targets = new List<string> { ExpectName() };
        while (Accept(","))
        {
            targets.Add(ExpectName());
        }

        ExpectKeyword("in");
        var iterable = ParseExpression(allowConditional: false);
        Expr? filter = null;
        if (AcceptKeyword("if"))
        {
            filter = ParseExpression();
        }

        ExpectEnd();
        _loops++;
        var (body, end) = ParseBlock("else", "endfor");
        _loops--;
        IReadOnlyList<Node>? elseBody = null;
        if (end == "else")
        {
            ExpectEnd();
            (elseBody, _) = ParseBlock("endfor");
        }

        ExpectEnd();
        return new ForNode(targets, iterable, filter, body, elseBody);
    }

    private Node ParseSet()
    {
        var name = ExpectName();
        string? attribute = null;
        if (Accept("."))
        {
            attribute = ExpectName();
        }

        if (!Accept("="))
        {
            ExpectEnd();
            var (body, _) = ParseBlock("endset");
            ExpectEnd();
            return new SetBlockNode(name, body);
        }

        var value = ParseExpression();
        ExpectEnd();
        return new SetNode(name, attribute, value);
    }

    private MacroNode ParseMacro()
    {
        var name = ExpectName();
        Expect("(");
        var parameters = new List<(string, Expr?)>();
        while (!Accept(")"))
        {
            var parameter = ExpectName();
            parameters.Add((parameter, Accept("=") ? ParseExpression() : null));
            if (!Accept(","))
            {
                Expect(")");
                break;
            }
        }

        ExpectEnd();
        var (body, _) = ParseBlock("endmacro");
        ExpectEnd();
        return new MacroNode(name, parameters, body);
    }

    private Expr ParseExpression(bool allowConditional = true)
    {
        var value = ParseOr();
        if (allowConditional && AcceptKeyword("if"))
        {
            var condition = ParseOr();
            var otherwise = AcceptKeyword("else") ? ParseExpression() : null;
            return new ConditionalExpr(condition, value, otherwise);
        }

        return value;
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (AcceptKeyword("or"))
        {
            left = new BinaryExpr("or", left, ParseAnd());
        }

        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (AcceptKeyword("and"))
        {
            left = new BinaryExpr("and", left, ParseNot());
        }

        return left;
    }

    private Expr ParseNot() => AcceptKeyword("not") ? new UnaryExpr("not", ParseNot()) : ParseComparison();

    private Expr ParseComparison()
    {
        var left = ParseConcat();
        while (true)
        {
            var token = Peek();
            if (token.Kind == TokenKind.Operator && token.Text is "==" or "!=" or "<" or ">" or "<=" or ">=")
            {
                _token++;
                left = new BinaryExpr(token.Text, left, ParseConcat());
            }
            else if (AcceptKeyword("in"))
            {
                left = new BinaryExpr("in", left, ParseConcat());
            }
            else if (token is { Kind: TokenKind.Name, Text: "not" } && PeekAt(1) is { Kind: TokenKind.Name, Text: "in" })
            {
                _token += 2;
                left = new UnaryExpr("not", new BinaryExpr("in", left, ParseConcat()));
            }
            else if (AcceptKeyword("is"))
            {
                var negated = AcceptKeyword("not");
                var test = ExpectName();
                if (!JinjaBuiltins.Tests.Contains(test))
                {
                    throw new ChatTemplateException($"line {_line}: unknown test '{test}'");
                }

                var arguments = new List<Expr>();
                if (Accept("("))
                {
                    arguments.AddRange(ParseArguments().Positional);
                }
                else if (Peek().Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float || (Peek().Kind == TokenKind.Name && Peek().Text is not ("and" or "or" or "else" or "if")))
                {
                    arguments.Add(ParsePrimaryWithPostfix());
                }

                left = new TestExpr(left, test, arguments, negated);
            }
            else
            {
                return left;
            }
        }
    }

    private Expr ParseConcat()
    {
        var left = ParseSum();
        while (Accept("~"))
        {
            left = new BinaryExpr("~", left, ParseSum());
        }

        return left;
    }

    private Expr ParseSum()
    {
        var left = ParseProduct();
        while (Peek() is { Kind: TokenKind.Operator, Text: "+" or "-" } op)
        {
            _token++;
            left = new BinaryExpr(op.Text, left, ParseProduct());
        }

        return left;
    }

    private Expr ParseProduct()
    {
        var left = ParsePower();
        while (Peek() is { Kind: TokenKind.Operator, Text: "*" or "/" or "//" or "%" } op)
        {
            _token++;
            left = new BinaryExpr(op.Text, left, ParsePower());
        }

        return left;
    }

    private Expr ParsePower()
    {
        var left = ParseUnary();
        while (Accept("**"))
        {
            left = new BinaryExpr("**", left, ParseUnary());
        }

        return left;
    }

    private Expr ParseUnary() =>
        Accept("-") ? new UnaryExpr("-", ParseUnary()) : Accept("+") ? ParseUnary() : ParseFilters(ParsePrimaryWithPostfix());

    private Expr ParseFilters(Expr value)
    {
        while (Accept("|"))
        {
            var name = ExpectName();
            if (!JinjaBuiltins.Filters.Contains(name))
            {
                throw new ChatTemplateException($"line {_line}: unknown filter '{name}'");
            }

            var (positional, named) = Accept("(") ? ParseArguments() : ([], []);
            value = new FilterExpr(value, name, positional, named);
        }

        return value;
    }

    private Expr ParsePrimaryWithPostfix()
    {
        var value = ParsePrimary();
        while (true)
        {
            if (Accept("."))
            {
                value = new AttributeExpr(value, Peek().Kind == TokenKind.Integer ? Next().Text : ExpectName());
            }
            else if (Accept("["))
            {
                value = ParseSubscript(value);
            }
            else if (Accept("("))
            {
                var (positional, named) = ParseArguments();
                value = new CallExpr(value, positional, named);
            }
            else
            {
                return value;
            }
        }
    }

    private Expr ParseSubscript(Expr target)
    {
        Expr? start = null;
        if (!(Peek().Text is ":" && Peek().Kind == TokenKind.Operator))
        {
            start = ParseExpression();
            if (Accept("]"))
            {
                return new ItemExpr(target, start);
            }
        }

        Expect(":");
        var stop = Peek().Text is ":" or "]" ? null : ParseExpression();
        Expr? step = null;
        if (Accept(":"))
        {
            step = Peek().Text == "]" ? null : ParseExpression();
        }

        Expect("]");
        return new SliceExpr(target, start, stop, step);
    }

    private (List<Expr> Positional, List<(string, Expr)> Named) ParseArguments()
    {
        var positional = new List<Expr>();
        var named = new List<(string, Expr)>();
        while (!Accept(")"))
        {
            if (Peek().Kind == TokenKind.Name && PeekAt(1) is { Kind: TokenKind.Operator, Text: "=" })
            {
                var name = Next().Text;
                _token++;
                named.Add((name, ParseExpression()));
            }
            else
            {
                positional.Add(ParseExpression());
            }

            if (!Accept(","))
            {
                Expect(")");
                break;
            }
        }

        return (positional, named);
    }

    private Expr ParsePrimary()
    {
        var token = Next();
        switch (token.Kind)
        {
            case TokenKind.String:
                var text = (string)token.Value!;
                while (Peek().Kind == TokenKind.String)
                {
                    text += (string)Next().Value!; // adjacent literals join, as in Python
                }

                return new LiteralExpr(text);
            case TokenKind.Integer or TokenKind.Float:
                return new LiteralExpr(token.Value);
            case TokenKind.Name:
                return token.Text switch
                {
                    "true" or "True" => new LiteralExpr(true),
                    "false" or "False" => new LiteralExpr(false),
                    "none" or "None" => new LiteralExpr(null),
                    _ => new NameExpr(token.Text),
                };
            case TokenKind.Operator when token.Text == "(":
                var inner = ParseExpression();
                if (Accept(","))
                {
                    var items = new List<Expr> { inner };
                    while (!Accept(")"))
                    {
                        items.Add(ParseExpression());
                        if (!Accept(","))
                        {
                            Expect(")");
                            break;
                        }
                    }

                    return new ListExpr(items);
                }

                Expect(")");
                return inner;
            case TokenKind.Operator when token.Text == "[":
                var list = new List<Expr>();
                while (!Accept("]"))
                {
                    list.Add(ParseExpression());
                    if (!Accept(","))
                    {
                        Expect("]");
                        break;
                    }
                }

                return new ListExpr(list);
            case TokenKind.Operator when token.Text == "{":
                var pairs = new List<(Expr, Expr)>();
                while (!Accept("}"))
                {
                    var key = ParseExpression();
                    Expect(":");
                    pairs.Add((key, ParseExpression()));
                    if (!Accept(","))
                    {
                        Expect("}");
                        break;
                    }
                }

                return new DictExpr(pairs);
            default:
                throw new ChatTemplateException($"line {_line}: unexpected '{token.Text}'");
        }
    }

    private void Begin(Segment segment)
    {
        _tokens = JinjaTokens.Read(segment.Content, segment.Line);
        _token = 0;
    }

    private Token Peek() => _tokens[_token];

    private Token PeekAt(int offset) => _tokens[Math.Min(_token + offset, _tokens.Count - 1)];

    private Token Next() => _tokens[_token < _tokens.Count - 1 ? _token++ : _token];

    private bool Accept(string op)
    {
        if (Peek() is { Kind: TokenKind.Operator } token && token.Text == op)
        {
            _token++;
            return true;
        }

        return false;
    }

    private bool AcceptKeyword(string keyword)
    {
        if (Peek() is { Kind: TokenKind.Name } token && token.Text == keyword)
        {
            _token++;
            return true;
        }

        return false;
    }

    private void Expect(string op)
    {
        if (!Accept(op))
        {
            throw new ChatTemplateException($"line {_line}: expected '{op}' but found '{Peek().Text}'");
        }
    }

    private void ExpectKeyword(string keyword)
    {
        if (!AcceptKeyword(keyword))
        {
            throw new ChatTemplateException($"line {_line}: expected '{keyword}' but found '{Peek().Text}'");
        }
    }

    private string ExpectName() =>
        Peek().Kind == TokenKind.Name ? Next().Text : throw new ChatTemplateException($"line {_line}: expected a name but found '{Peek().Text}'");

    private void ExpectEnd()
    {
        if (Peek().Kind != TokenKind.End)
        {
            throw new ChatTemplateException($"line {_line}: unexpected '{Peek().Text}'");
        }
    }
}
