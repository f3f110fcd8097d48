using System.Text;

namespace Appliance.Prompting.Jinja;

/// <summary>Evaluates a parsed template against a context, with Python's semantics for values and operators.</summary>
internal sealed class JinjaRenderer
{
    private const int MaxOutputChars = 4 * 1024 * 1024;

    private readonly List<Dictionary<string, object?>> _scopes;
    private readonly StringBuilder _output = new();
    private bool? _loopControl; // set by {% break %} (true) or {% continue %} (false) until the loop takes it

    private JinjaRenderer(IReadOnlyDictionary<string, object?> context)
    {
        var globals = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["range"] = (JinjaCallable)Range,
            ["namespace"] = (JinjaCallable)((_, named) =>
            {
                var ns = new JinjaNamespace();
                foreach (var (key, value) in named)
                {
                    ns[key] = value;
                }

                return ns;
            }),
            ["dict"] = (JinjaCallable)((_, named) => new Dictionary<string, object?>(named, StringComparer.Ordinal)),
            ["raise_exception"] = (JinjaCallable)((args, _) => throw new ChatTemplateRejectedException(args.Count > 0 ? JinjaValues.ToText(args[0]) : "the chat template refused the conversation")),
        };
        foreach (var (key, value) in context)
        {
            globals[key] = value;
        }

        _scopes = [globals];
    }

    public static string Render(IReadOnlyList<Node> template, IReadOnlyDictionary<string, object?> context)
    {
        var renderer = new JinjaRenderer(context);
        renderer.RenderNodes(template);
        return renderer._output.ToString();
    }

    public static object? GetAttribute(object? target, string name) => target switch
    {
        Dictionary<string, object?> dict => dict.TryGetValue(name, out var value) ? value : Undefined.Instance,
        List<object?> list when int.TryParse(name, out var index) => index < list.Count ? list[index] : Undefined.Instance,
        _ => Undefined.Instance,
    };

    public static bool Contains(object? container, object? item) => container switch
    {
        string s => item is string part && s.Contains(part, StringComparison.Ordinal),
        List<object?> list => list.Any(x => JinjaValues.Equals(x, item)),
        Dictionary<string, object?> dict => item is string key && dict.ContainsKey(key),
        _ => false,
    };

    public static object? Arithmetic(string op, object? left, object? right)
    {
        if (op == "+")
        {
            switch (left, right)
            {
                case (string a, string b):
                    return a + b;
                case (List<object?> a, List<object?> b):
                    return a.Concat(b).ToList();
            }
        }

        if (op == "*" && left is string repeated && right is long times)
        {
            return string.Concat(Enumerable.Repeat(repeated, (int)Math.Max(0, times)));
        }

        if (left is long x && right is long y && op is "+" or "-" or "*" or "//" or "%")
        {
            return op switch
            {
                "+" => x + y,
                "-" => x - y,
                "*" => x * y,
                "//" => y == 0 ? throw new ChatTemplateException("division by zero") : (long)Math.Floor((double)x / y),
                _ => y == 0 ? throw new ChatTemplateException("division by zero") : ((x % y) + y) % y,
            };
        }

        if (left is not (long or double or bool) || right is not (long or double or bool))
        {
            throw new ChatTemplateException($"unsupported operand types for {op}: {JinjaValues.TypeName(left)} and {JinjaValues.TypeName(right)}");
        }

        var l = JinjaValues.ToDouble(left);
        var r = JinjaValues.ToDouble(right);
        return op switch
        {
            "+" => l + r,
            "-" => l - r,
            "*" => l * r,
            "/" => l / r,
            "//" => Math.Floor(l / r),
            "%" => l - (r * Math.Floor(l / r)),
            "**" => left is long bl && right is long el && el >= 0 ? (object)(long)Math.Pow(bl, el) : Math.Pow(l, r),
            _ => throw new ChatTemplateException($"unknown operator {op}"),
        };
    }

    private void RenderNodes(IReadOnlyList<Node> nodes)
    {
        foreach (var node in nodes)
        {
            RenderNode(node);
            if (_output.Length > MaxOutputChars)
            {
                throw new ChatTemplateException("the rendered prompt exceeds 4 million characters");
            }

            if (_loopControl is not null)
            {
                return; // the rest of this loop body is skipped
            }
        }
    }

    private void RenderNode(Node node)
    {
        switch (node)
        {
            case TextNode text:
                _output.Append(text.Text);
                break;
            case OutputNode output:
                _output.Append(JinjaValues.ToText(Evaluate(output.Value)));
                break;
            case IfNode conditional:
                var branch = conditional.Branches.FirstOrDefault(b => JinjaValues.IsTrue(Evaluate(b.Condition)));
                var body = branch.Body ?? conditional.Else;
                if (body is not null)
                {
                    RenderNodes(body);
                }

                break;
            case ForNode loop:
                RenderFor(loop);
                break;
            case SetNode set when set.Attribute is { } attribute:
                if (Lookup(set.Name) is not JinjaNamespace ns)
                {
                    throw new ChatTemplateException($"cannot set an attribute of '{set.Name}': it is not a namespace");
                }

                ns[attribute] = Evaluate(set.Value);
                break;
            case SetNode set:
                _scopes[^1][set.Name] = Evaluate(set.Value);
                break;
            case SetBlockNode block:
                var start = _output.Length;
                RenderNodes(block.Body);
                _scopes[^1][block.Name] = _output.ToString(start, _output.Length - start);
                _output.Length = start;
                break;
            case MacroNode macro:
                _scopes[^1][macro.Name] = MakeMacro(macro);
                break;
            case BlockNode block:
                _scopes.Add(new Dictionary<string, object?>(StringComparer.Ordinal)); // a scope of its own, as transformers' extension gives it
                try
                {
                    RenderNodes(block.Body);
                }
                finally
                {
                    _scopes.RemoveAt(_scopes.Count - 1);
                }

                break;
            case LoopControlNode control:
                _loopControl = control.Break;
                break;
            default:
                throw new ChatTemplateException($"cannot render {node.GetType().Name}");
        }
    }

    private void RenderFor(ForNode loop)
    {
        var items = JinjaBuiltins.Iterate(Evaluate(loop.Iterable)).ToList();
        if (loop.Filter is not null)
        {
            items = [.. items.Where(item =>
            {
                _scopes.Add(Bind(loop.Targets, item));
                try
                {
                    return JinjaValues.IsTrue(Evaluate(loop.Filter));
                }
                finally
                {
                    _scopes.RemoveAt(_scopes.Count - 1);
                }
            })];
        }

        if (items.Count == 0)
        {
            if (loop.Else is not null)
            {
                RenderNodes(loop.Else);
            }

            return;
        }

        for (var i = 0; i < items.Count; i++)
        {
            var scope = Bind(loop.Targets, items[i]);
            var index = i;
            scope["loop"] = new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["index"] = (long)(i + 1),
                ["index0"] = (long)i,
                ["revindex"] = (long)(items.Count - i),
                ["revindex0"] = (long)(items.Count - i - 1),
                ["first"] = i == 0,
                ["last"] = i == items.Count - 1,
                ["length"] = (long)items.Count,
                ["previtem"] = i > 0 ? items[i - 1] : Undefined.Instance,
                ["nextitem"] = i < items.Count - 1 ? items[i + 1] : Undefined.Instance,
                ["cycle"] = (JinjaCallable)((args, _) => args.Count == 0 ? null : args[index % args.Count]),
            };
            _scopes.Add(scope);
            try
            {
                RenderNodes(loop.Body);
            }
            finally
            {
                _scopes.RemoveAt(_scopes.Count - 1);
            }

            var stop = _loopControl == true;
            _loopControl = null;
            if (stop)
            {
                break;
            }
        }
    }

    private static Dictionary<string, object?> Bind(IReadOnlyList<string> targets, object? item)
    {
        var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (targets.Count == 1)
        {
            scope[targets[0]] = item;
            return scope;
        }

        var parts = JinjaBuiltins.Iterate(item).ToList();
        if (parts.Count != targets.Count)
        {
            throw new ChatTemplateException($"cannot unpack {parts.Count} values into {targets.Count} names");
        }

        for (var i = 0; i < targets.Count; i++)
        {
            scope[targets[i]] = parts[i];
        }

        return scope;
    }

    private JinjaCallable MakeMacro(MacroNode macro) => (args, named) =>
    {
        var scope = new Dictionary<string, object?>(StringComparer.Ordinal);
        for (var i = 0; i < macro.Parameters.Count; i++)
        {
            var (name, fallback) = macro.Parameters[i];
            scope[name] = i < args.Count ? args[i] : named.TryGetValue(name, out var value) ? value : fallback is null ? Undefined.Instance : Evaluate(fallback);
        }

        var start = _output.Length;
        _scopes.Add(scope);
        try
        {
            RenderNodes(macro.Body);
            return _output.ToString(start, _output.Length - start);
        }
        finally
        {
            _scopes.RemoveAt(_scopes.Count - 1);
            _output.Length = start;
        }
    };

    private object? Lookup(string name)
    {
        for (var i = _scopes.Count - 1; i >= 0; i--)
        {
            if (_scopes[i].TryGetValue(name, out var value))
            {
                return value;
            }
        }

        return Undefined.Instance;
    }

    private object? Evaluate(Expr expr)
    {
        switch (expr)
        {
            case LiteralExpr literal:
                return literal.Value;
            case NameExpr name:
                return Lookup(name.Name);
            case AttributeExpr attribute:
                return GetAttribute(Evaluate(attribute.Target), attribute.Name);
            case ItemExpr item:
                return GetItem(Evaluate(item.Target), Evaluate(item.Key));
            case SliceExpr slice:
                return Slice(Evaluate(slice.Target), Optional(slice.Start), Optional(slice.Stop), Optional(slice.Step));
            case CallExpr call:
                return Call(call);
            case FilterExpr filter:
                return JinjaBuiltins.Filter(filter.Name, Evaluate(filter.Target), [.. filter.Arguments.Select(Evaluate)], Named(filter.Named), this);
            case TestExpr test:
                return JinjaBuiltins.Test(test.Name, Evaluate(test.Target), [.. test.Arguments.Select(Evaluate)]) != test.Negated;
            case UnaryExpr { Operator: "not" } unary:
                return !JinjaValues.IsTrue(Evaluate(unary.Operand));
            case UnaryExpr unary:
                return Evaluate(unary.Operand) switch
                {
                    long l => (object)(-l),
                    var v => -JinjaValues.ToDouble(v),
                };
            case BinaryExpr binary:
                return Binary(binary);
            case ConditionalExpr conditional:
                return JinjaValues.IsTrue(Evaluate(conditional.Condition))
                    ? Evaluate(conditional.Then)
                    : conditional.Else is null ? Undefined.Instance : Evaluate(conditional.Else);
            case ListExpr list:
                return list.Items.Select(Evaluate).ToList();
            case DictExpr dict:
                return dict.Items.ToDictionary(p => JinjaValues.ToText(Evaluate(p.Key)), p => Evaluate(p.Value), StringComparer.Ordinal);
            default:
                throw new ChatTemplateException($"cannot evaluate {expr.GetType().Name}");
        }
    }

    private long? Optional(Expr? expr) => expr is null ? null : Evaluate(expr) switch
    {
        long l => l,
        null => null,
        var other => throw new ChatTemplateException($"slice indices must be integers, not {JinjaValues.TypeName(other)}"),
    };

    private Dictionary<string, object?> Named(IReadOnlyList<(string Name, Expr Value)> named) =>
        named.ToDictionary(p => p.Name, p => Evaluate(p.Value), StringComparer.Ordinal);

    private object? Call(CallExpr call)
    {
        var args = call.Arguments.Select(Evaluate).ToList();
        var named = Named(call.Named);
        if (call.Target is AttributeExpr method)
        {
            var target = Evaluate(method.Target);
            if (GetAttribute(target, method.Name) is JinjaCallable bound)
            {
                return bound(args, named);
            }

            return JinjaBuiltins.Method(target, method.Name, args);
        }

        return Evaluate(call.Target) is JinjaCallable callable
            ? callable(args, named)
            : throw new ChatTemplateException($"'{(call.Target as NameExpr)?.Name ?? "value"}' is not callable");
    }

    private object? Binary(BinaryExpr binary)
    {
        switch (binary.Operator)
        {
            case "and":
                var left = Evaluate(binary.Left);
                return JinjaValues.IsTrue(left) ? Evaluate(binary.Right) : left;
            case "or":
                var first = Evaluate(binary.Left);
                return JinjaValues.IsTrue(first) ? first : Evaluate(binary.Right);
        }

        var l = Evaluate(binary.Left);
        var r = Evaluate(binary.Right);
        return binary.Operator switch
        {
            "==" => JinjaValues.Equals(l, r),
            "!=" => !JinjaValues.Equals(l, r),
            "<" => JinjaValues.Compare(l, r) < 0,
            ">" => JinjaValues.Compare(l, r) > 0,
            "<=" => JinjaValues.Compare(l, r) <= 0,
            ">=" => JinjaValues.Compare(l, r) >= 0,
            "in" => Contains(r, l),
            "~" => JinjaValues.ToText(l) + JinjaValues.ToText(r),
            _ => Arithmetic(binary.Operator, l, r),
        };
    }

    private static object? GetItem(object? target, object? key) => (target, key) switch
    {
        (Dictionary<string, object?> dict, _) => dict.TryGetValue(JinjaValues.ToText(key), out var value) ? value : Undefined.Instance,
        (List<object?> list, long index) => index < list.Count && index >= -list.Count ? list[(int)(index < 0 ? list.Count + index : index)] : Undefined.Instance,
        (string s, long index) => index < s.Length && index >= -s.Length ? s[(int)(index < 0 ? s.Length + index : index)].ToString() : Undefined.Instance,
        _ => Undefined.Instance,
    };

    /// <summary>Python slicing of lists and strings, negative indices and steps included.</summary>
    private static object? Slice(object? target, long? start, long? stop, long? step)
    {
        var items = target switch
        {
            string s => s.Select(c => (object?)c.ToString()).ToList(),
            List<object?> list => list,
            _ => throw new ChatTemplateException($"cannot slice {JinjaValues.TypeName(target)}"),
        };
        var count = items.Count;
        var by = step ?? 1;
        if (by == 0)
        {
            throw new ChatTemplateException("slice step cannot be zero");
        }

        long Clamp(long? value, long fallback, long low, long high) =>
            value is not { } v ? fallback : Math.Clamp(v < 0 ? v + count : v, low, high);
        var result = new List<object?>();
        if (by > 0)
        {
            for (var i = Clamp(start, 0, 0, count); i < Clamp(stop, count, 0, count); i += by)
            {
                result.Add(items[(int)i]);
            }
        }
        else
        {
            for (var i = Clamp(start, count - 1, -1, count - 1); i > Clamp(stop, -1, -1, count - 1); i += by)
            {
                result.Add(items[(int)i]);
            }
        }

        return target is string ? string.Concat(result.Select(JinjaValues.ToText)) : result;
    }

    private static object? Range(IReadOnlyList<object?> args, IReadOnlyDictionary<string, object?> named)
    {
        long Int(int i) => args[i] is long l ? l : throw new ChatTemplateException("range() takes integers");
        var (start, stop, step) = args.Count switch
        {
            1 => (0L, Int(0), 1L),
            2 => (Int(0), Int(1), 1L),
            3 => (Int(0), Int(1), Int(2)),
            _ => throw new ChatTemplateException("range() takes 1 to 3 arguments"),
        };
        if (step == 0 || Math.Abs((stop - start) / step) > 100_000)
        {
            throw new ChatTemplateException("range() is empty-stepped or too long");
        }

        var values = new List<object?>();
        for (var i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            values.Add(i);
        }

        return values;
    }
}
