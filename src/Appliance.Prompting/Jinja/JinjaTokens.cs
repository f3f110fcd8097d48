using System.Globalization;
using System.Text;

namespace Appliance.Prompting.Jinja;

internal enum TokenKind
{
    Name,
    String,
    Integer,
    Float,
    Operator,
    End,
}

internal readonly record struct Token(TokenKind Kind, string Text, object? Value = null);

/// <summary>Tokens of the expression language inside tags: names, string and number literals, operators.</summary>
internal static class JinjaTokens
{
    private static readonly string[] Operators =
        ["//", "**", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ",", ":", ".", "|", "~", "+", "-", "*", "/", "%", "<", ">", "="];

    public static List<Token> Read(string source, int line)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (i < source.Length)
        {
            var c = source[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (char.IsLetter(c) || c == '_')
            {
                var start = i;
                while (i < source.Length && (char.IsLetterOrDigit(source[i]) || source[i] == '_'))
                {
                    i++;
                }

                tokens.Add(new Token(TokenKind.Name, source[start..i]));
            }
            else if (char.IsDigit(c))
            {
                var start = i;
                while (i < source.Length && (char.IsDigit(source[i]) || source[i] == '_'))
                {
                    i++;
                }

                if (i + 1 < source.Length && source[i] == '.' && char.IsDigit(source[i + 1]))
                {
                    i++;
                    while (i < source.Length && char.IsDigit(source[i]))
                    {
                        i++;
                    }

                    var text = source[start..i];
                    tokens.Add(new Token(TokenKind.Float, text, double.Parse(text, CultureInfo.InvariantCulture)));
                }
                else
                {
                    var text = source[start..i].Replace("_", string.Empty, StringComparison.Ordinal);
                    tokens.Add(new Token(TokenKind.Integer, text, long.Parse(text, CultureInfo.InvariantCulture)));
                }
            }
            else if (c is '\'' or '"')
            {
                var (value, next) = ReadString(source, i, line);
                tokens.Add(new Token(TokenKind.String, source[i..next], value));
                i = next;
            }
            else
            {
                var op = Operators.FirstOrDefault(o => string.CompareOrdinal(source, i, o, 0, o.Length) == 0)
                    ?? throw new ChatTemplateException($"line {line}: unexpected character '{c}' in '{source}'");
                tokens.Add(new Token(TokenKind.Operator, op));
                i += op.Length;
            }
        }

        tokens.Add(new Token(TokenKind.End, string.Empty));
        return tokens;
    }

    private static (string Value, int Next) ReadString(string source, int start, int line)
    {
        var quote = source[start];
        var value = new StringBuilder();
        for (var i = start + 1; i < source.Length; i++)
        {
            var c = source[i];
            if (c == quote)
            {
                return (value.ToString(), i + 1);
            }

            if (c != '\\' || i + 1 >= source.Length)
            {
                value.Append(c);
                continue;
            }

            var escaped = source[++i];
            switch (escaped)
            {
                case 'n': value.Append('\n'); break;
                case 't': value.Append('\t'); break;
                case 'r': value.Append('\r'); break;
                case '\\': value.Append('\\'); break;
                case '\'': value.Append('\''); break;
                case '"': value.Append('"'); break;
                case 'u' when i + 4 < source.Length:
                    value.Append((char)int.Parse(source.AsSpan(i + 1, 4), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                    i += 4;
                    break;
                default: value.Append('\\').Append(escaped); break;
            }
        }

        throw new ChatTemplateException($"line {line}: unterminated string in '{source}'");
    }
}
