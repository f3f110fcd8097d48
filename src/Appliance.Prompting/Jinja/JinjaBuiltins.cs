using System.Globalization;

namespace Appliance.Prompting.Jinja;

/// <summary>The filters, tests and methods chat templates of the common model families use.</summary>
internal static class JinjaBuiltins
{
    public static readonly HashSet<string> Filters =
    [
        "trim", "length", "count", "tojson", "upper", "lower", "default", "d", "join", "first", "last", "list", "string",
        "int", "float", "capitalize", "title", "replace", "items", "reverse", "safe", "e", "escape", "abs", "round",
        "map", "select", "reject", "selectattr", "rejectattr", "unique", "sort", "indent", "wordcount", "dictsort", "max", "min", "sum",
    ];

    public static readonly HashSet<string> Tests =
    [
        "defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "sequence", "iterable",
        "true", "false", "boolean", "equalto", "eq", "ne", "odd", "even", "divisibleby", "in", "lower", "upper", "callable",
    ];

    public static object? Filter(string name, object? value, IReadOnlyList<object?> args, IReadOnlyDictionary<string, object?> named, JinjaRenderer renderer)
    {
        object? Arg(int index, string key, object? fallback = null) => index < args.Count ? args[index] : named.TryGetValue(key, out var v) ? v : fallback;
        switch (name)
        {
            case "trim":
                return Arg(0, "chars") is string chars ? JinjaValues.ToText(value).Trim(chars.ToCharArray()) : JinjaValues.ToText(value).Trim();
            case "length" or "count":
                return value switch
                {
                    string s => (long)s.Length,
                    System.Collections.ICollection c => (long)c.Count,
                    _ => 0L,
                };
            case "tojson":
                return JinjaValues.ToJson(value, Arg(0, "indent") is long indent ? (int)indent : null);
            case "upper":
                return JinjaValues.ToText(value).ToUpperInvariant();
            case "lower":
                return JinjaValues.ToText(value).ToLowerInvariant();
            case "default" or "d":
                var boolean = JinjaValues.IsTrue(Arg(1, "boolean", false));
                return value is Undefined || (boolean && !JinjaValues.IsTrue(value)) ? Arg(0, "default_value", string.Empty) : value;
            case "join":
                return string.Join(JinjaValues.ToText(Arg(0, "d", string.Empty)), Iterate(value).Select(JinjaValues.ToText));
            case "first":
                return Iterate(value).FirstOrDefault(Undefined.Instance);
            case "last":
                return Iterate(value).LastOrDefault(Undefined.Instance);
            case "list":
                return Iterate(value).ToList();
            case "string" or "safe" or "e" or "escape":
                return JinjaValues.ToText(value);
            case "int":
                return value switch
                {
                    long l => l,
                    double d => (long)d,
                    string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) => parsed,
                    _ => Arg(0, "default", 0L),
                };
            case "float":
                return value switch
                {
                    long l => (double)l,
                    double d => d,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) => parsed,
                    _ => Arg(0, "default", 0.0),
                };
            case "capitalize":
                var text = JinjaValues.ToText(value);
                return text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..].ToLowerInvariant();
            case "title":
                return CultureInfo.InvariantCulture.TextInfo.ToTitleCase(JinjaValues.ToText(value).ToLowerInvariant());
            case "replace":
                return JinjaValues.ToText(value).Replace(JinjaValues.ToText(Arg(0, "old")), JinjaValues.ToText(Arg(1, "new")), StringComparison.Ordinal);
            case "items":
                return value is Dictionary<string, object?> dict ? dict.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList() : new List<object?>();
            case "dictsort":
                return value is Dictionary<string, object?> sorted ? sorted.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList() : new List<object?>();
            case "reverse":
                return value is string reversed ? new string(reversed.Reverse().ToArray()) : Iterate(value).Reverse().ToList();
            case "abs":
                return value is long a ? (object)Math.Abs(a) : Math.Abs(JinjaValues.ToDouble(value));
            case "round":
                return Math.Round(JinjaValues.ToDouble(value), (int)(Arg(0, "precision", 0L) as long? ?? 0), MidpointRounding.ToEven);
            case "unique":
                var unique = new List<object?>();
                foreach (var item in Iterate(value).Where(item => !unique.Any(u => JinjaValues.Equals(u, item))))
                {
                    unique.Add(item);
                }

                return unique;
            case "sort":
                var items = Iterate(value).ToList();
                items.Sort(JinjaValues.Compare);
                return JinjaValues.IsTrue(Arg(0, "reverse", false)) ? Enumerable.Reverse(items).ToList() : items;
            case "max":
                return Iterate(value).Aggregate((a, b) => JinjaValues.Compare(a, b) >= 0 ? a : b);
            case "min":
                return Iterate(value).Aggregate((a, b) => JinjaValues.Compare(a, b) <= 0 ? a : b);
            case "sum":
                return Iterate(value).Aggregate((object?)0L, (total, item) => JinjaRenderer.Arithmetic("+", total, item));
            case "indent":
                var width = (int)(Arg(0, "width", 4L) as long? ?? 4);
                var lines = JinjaValues.ToText(value).Split('\n');
                return string.Join("\n" + new string(' ', width), lines);
            case "wordcount":
                return (long)JinjaValues.ToText(value).Split((char[])[' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries).Length;
            case "map":
                return named.TryGetValue("attribute", out var attribute)
                    ? Iterate(value).Select(item => JinjaRenderer.GetAttribute(item, JinjaValues.ToText(attribute))).ToList()
                    : Iterate(value).Select(item => Filter(JinjaValues.ToText(Arg(0, "name")), item, [], new Dictionary<string, object?>(), renderer)).ToList();
            case "select" or "reject":
                var keep = name == "select";
                return Iterate(value).Where(item => (args.Count == 0 ? JinjaValues.IsTrue(item) : Test(JinjaValues.ToText(args[0]), item, args.Skip(1).ToList())) == keep).ToList();
            case "selectattr" or "rejectattr":
                var wanted = name == "selectattr";
                return Iterate(value).Where(item =>
                {
                    var attr = JinjaRenderer.GetAttribute(item, JinjaValues.ToText(args[0]));
                    return (args.Count == 1 ? JinjaValues.IsTrue(attr) : Test(JinjaValues.ToText(args[1]), attr, args.Skip(2).ToList())) == wanted;
                }).ToList();
            default:
                throw new ChatTemplateException($"unknown filter '{name}'");
        }
    }

    public static bool Test(string name, object? value, IReadOnlyList<object?> args) => name switch
    {
        "defined" => value is not Undefined,
        "undefined" => value is Undefined,
        "none" => value is null,
        "string" => value is string,
        "number" => value is long or double,
        "integer" => value is long,
        "float" => value is double,
        "mapping" => value is Dictionary<string, object?>,
        "sequence" or "iterable" => value is string or List<object?> or Dictionary<string, object?>,
        "true" => value is true,
        "false" => value is false,
        "boolean" => value is bool,
        "equalto" or "eq" => JinjaValues.Equals(value, args[0]),
        "ne" => !JinjaValues.Equals(value, args[0]),
        "odd" => value is long odd && odd % 2 != 0,
        "even" => value is long even && even % 2 == 0,
        "divisibleby" => value is long n && args[0] is long d && d != 0 && n % d == 0,
        "in" => JinjaRenderer.Contains(args[0], value),
        "lower" => value is string lower && lower == lower.ToLowerInvariant(),
        "upper" => value is string upper && upper == upper.ToUpperInvariant(),
        "callable" => value is JinjaCallable,
        _ => throw new ChatTemplateException($"unknown test '{name}'"),
    };

    /// <summary>Methods of str, dict and list that templates call.</summary>
    public static object? Method(object? target, string name, IReadOnlyList<object?> args)
    {
        string? Text(int i) => i < args.Count && args[i] is not (null or Undefined) ? JinjaValues.ToText(args[i]) : null;
        switch (target)
        {
            case string s:
                return name switch
                {
                    "strip" => Text(0) is { } chars ? s.Trim(chars.ToCharArray()) : s.Trim(),
                    "lstrip" => Text(0) is { } chars ? s.TrimStart(chars.ToCharArray()) : s.TrimStart(),
                    "rstrip" => Text(0) is { } chars ? s.TrimEnd(chars.ToCharArray()) : s.TrimEnd(),
                    "startswith" => s.StartsWith(Text(0) ?? string.Empty, StringComparison.Ordinal),
                    "endswith" => s.EndsWith(Text(0) ?? string.Empty, StringComparison.Ordinal),
                    "lower" => s.ToLowerInvariant(),
                    "upper" => s.ToUpperInvariant(),
                    "title" => CultureInfo.InvariantCulture.TextInfo.ToTitleCase(s.ToLowerInvariant()),
                    "capitalize" => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(),
                    "replace" => s.Replace(Text(0) ?? string.Empty, Text(1) ?? string.Empty, StringComparison.Ordinal),
                    "find" => (long)s.IndexOf(Text(0) ?? string.Empty, StringComparison.Ordinal),
                    "count" => (long)CountOccurrences(s, Text(0) ?? string.Empty),
                    "split" => Split(s, Text(0), args.Count > 1 && args[1] is long max ? (int)max : -1),
                    "join" => string.Join(s, Iterate(args.Count > 0 ? args[0] : null).Select(JinjaValues.ToText)),
                    "format" => FormatPercentFree(s, args),
                    _ => throw new ChatTemplateException($"str has no method '{name}'"),
                };
            case Dictionary<string, object?> dict:
                return name switch
                {
                    "items" => dict.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
                    "keys" => dict.Keys.Select(k => (object?)k).ToList(),
                    "values" => dict.Values.ToList(),
                    "get" => dict.TryGetValue(Text(0) ?? string.Empty, out var v) ? v : args.Count > 1 ? args[1] : null,
                    _ => throw new ChatTemplateException($"dict has no method '{name}'"),
                };
            case List<object?> list when name == "append":
                list.Add(args.Count > 0 ? args[0] : null);
                return null;
            default:
                throw new ChatTemplateException($"{JinjaValues.TypeName(target)} has no method '{name}'");
        }
    }

    public static IEnumerable<object?> Iterate(object? value) => value switch
    {
        null or Undefined => [],
        string s => s.Select(c => (object?)c.ToString()),
        List<object?> list => list,
        Dictionary<string, object?> dict => dict.Keys.Select(k => (object?)k),
        _ => throw new ChatTemplateException($"{JinjaValues.TypeName(value)} is not iterable"),
    };

    private static List<object?> Split(string s, string? separator, int maxSplit)
    {
        if (separator is null)
        {
            return [.. s.Split((char[])[' ', '\t', '\n', '\r', '\f', '\v'], maxSplit < 0 ? int.MaxValue : maxSplit + 1, StringSplitOptions.RemoveEmptyEntries)];
        }

        return [.. s.Split(separator, maxSplit < 0 ? int.MaxValue : maxSplit + 1, StringSplitOptions.None)];
    }

    private static int CountOccurrences(string s, string part)
    {
        if (part.Length == 0)
        {
            return s.Length + 1;
        }

        var count = 0;
        for (var at = s.IndexOf(part, StringComparison.Ordinal); at >= 0; at = s.IndexOf(part, at + part.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    /// <summary>str.format with positional "{}" / "{0}" fields only.</summary>
    private static string FormatPercentFree(string format, IReadOnlyList<object?> args)
    {
        var next = 0;
        return System.Text.RegularExpressions.Regex.Replace(format, @"\{(\d*)\}", m =>
            JinjaValues.ToText(args[m.Groups[1].Value.Length > 0 ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : next++]));
    }
}
