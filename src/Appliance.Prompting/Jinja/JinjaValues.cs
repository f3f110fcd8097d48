using System.Globalization;
using System.Text;

namespace Appliance.Prompting.Jinja;

/// <summary>Jinja's undefined value: renders empty, is falsy, and is what a missing key or attribute gives.</summary>
internal sealed class Undefined
{
    public static readonly Undefined Instance = new();

    private Undefined()
    {
    }
}

/// <summary>A callable value: a global such as range or raise_exception, a bound method, or a macro.</summary>
internal delegate object? JinjaCallable(IReadOnlyList<object?> arguments, IReadOnlyDictionary<string, object?> named);

/// <summary>namespace(...): a mutable object whose attributes can be set from inside loops.</summary>
internal sealed class JinjaNamespace : Dictionary<string, object?>
{
    public JinjaNamespace()
        : base(StringComparer.Ordinal)
    {
    }
}

/// <summary>Python semantics for the values templates see: truthiness, str(), equality, ordering.</summary>
internal static class JinjaValues
{
    public static bool IsTrue(object? value) => value switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        System.Collections.ICollection c => c.Count > 0,
        _ => true,
    };

    /// <summary>str(value) as Python prints it (True, None, 1.0, ['a', 1]).</summary>
    public static string ToText(object? value) => value switch
    {
        null => "None",
        Undefined => string.Empty,
        string s => s,
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FormatFloat(d),
        _ => Repr(value),
    };

    public static string Repr(object? value) => value switch
    {
        string s => "'" + s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal) + "'",
        List<object?> list => "[" + string.Join(", ", list.Select(Repr)) + "]",
        Dictionary<string, object?> dict => "{" + string.Join(", ", dict.Select(p => Repr(p.Key) + ": " + Repr(p.Value))) + "}",
        _ => ToText(value),
    };

    public static new bool Equals(object? left, object? right) => (left, right) switch
    {
        (null, null) => true,
        (Undefined, Undefined) => true,
        (long a, long b) => a == b,
        (long or double, long or double) => ToDouble(left) == ToDouble(right),
        (bool a, bool b) => a == b,
        (string a, string b) => string.Equals(a, b, StringComparison.Ordinal),
        (List<object?> a, List<object?> b) => a.Count == b.Count && a.Zip(b).All(p => Equals(p.First, p.Second)),
        _ => ReferenceEquals(left, right),
    };

    public static int Compare(object? left, object? right) => (left, right) switch
    {
        (long or double, long or double) => ToDouble(left).CompareTo(ToDouble(right)),
        (string a, string b) => string.CompareOrdinal(a, b),
        _ => throw new ChatTemplateException($"cannot compare {TypeName(left)} with {TypeName(right)}"),
    };

    public static double ToDouble(object? value) => value switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new ChatTemplateException($"expected a number, got {TypeName(value)}"),
    };

    public static string TypeName(object? value) => value switch
    {
        null => "None",
        Undefined => "undefined",
        string => "str",
        bool => "bool",
        long => "int",
        double => "float",
        List<object?> => "list",
        Dictionary<string, object?> => "dict",
        _ => value.GetType().Name,
    };

    /// <summary>Python's repr of a float: shortest round-trip digits, always with a decimal point or exponent.</summary>
    private static string FormatFloat(double value)
    {
        if (double.IsNaN(value))
        {
            return "nan";
        }

        if (double.IsInfinity(value))
        {
            return value > 0 ? "inf" : "-inf";
        }

        var text = value.ToString("R", CultureInfo.InvariantCulture);
        return text.Contains('.', StringComparison.Ordinal) || text.Contains('E', StringComparison.Ordinal) ? text.Replace("E", "e", StringComparison.Ordinal) : text + ".0";
    }

    /// <summary>json.dumps(value, ensure_ascii=False, indent=indent), the tojson filter transformers installs.</summary>
    public static string ToJson(object? value, int? indent)
    {
        var json = new StringBuilder();
        WriteJson(json, value, indent, 0);
        return json.ToString();
    }

    private static void WriteJson(StringBuilder json, object? value, int? indent, int depth)
    {
        switch (value)
        {
            case null or Undefined:
                json.Append("null");
                break;
            case bool b:
                json.Append(b ? "true" : "false");
                break;
            case long or double:
                json.Append(ToText(value));
                break;
            case string s:
                WriteJsonString(json, s);
                break;
            case List<object?> list:
                WriteJsonItems(json, '[', ']', list.Count, indent, depth, i => WriteJson(json, list[i], indent, depth + 1));
                break;
            case Dictionary<string, object?> dict:
                var pairs = dict.ToList();
                WriteJsonItems(json, '{', '}', pairs.Count, indent, depth, i =>
                {
                    WriteJsonString(json, pairs[i].Key);
                    json.Append(": ");
                    WriteJson(json, pairs[i].Value, indent, depth + 1);
                });
                break;
            default:
                throw new ChatTemplateException($"cannot serialise {TypeName(value)} to JSON");
        }
    }

    private static void WriteJsonItems(StringBuilder json, char open, char close, int count, int? indent, int depth, Action<int> writeItem)
    {
        json.Append(open);
        if (count == 0)
        {
            json.Append(close);
            return;
        }

        for (var i = 0; i < count; i++)
        {
            if (i > 0)
            {
                json.Append(indent is null ? ", " : ",");
            }

            if (indent is { } width)
            {
                json.Append('\n').Append(' ', width * (depth + 1));
            }

            writeItem(i);
        }

        if (indent is { } size)
        {
            json.Append('\n').Append(' ', size * depth);
        }

        json.Append(close);
    }

    private static void WriteJsonString(StringBuilder json, string text)
    {
        json.Append('"');
        foreach (var c in text)
        {
            switch (c)
            {
                case '"': json.Append("\\\""); break;
                case '\\': json.Append("\\\\"); break;
                case '\n': json.Append("\\n"); break;
                case '\r': json.Append("\\r"); break;
                case '\t': json.Append("\\t"); break;
                case '\b': json.Append("\\b"); break;
                case '\f': json.Append("\\f"); break;
                case < ' ': json.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture)); break;
                default: json.Append(c); break;
            }
        }

        json.Append('"');
    }
}
