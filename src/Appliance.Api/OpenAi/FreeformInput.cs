using System.Text;
using System.Text.Json;

namespace Appliance.Api.OpenAi;

/// <summary>
/// A custom tool's text input carried as a function's arguments: templates and call parsers know functions only, so a
/// custom tool is offered as a function with one string parameter, "input", and its calls are read back from it.
/// </summary>
internal static class FreeformInput
{
    public const string Parameter = "input";

    /// <summary>
    /// The parameters the model sees (and that a forced tool_choice enforces): one required string, matching
    /// <paramref name="pattern"/> when the tool's input follows a regex grammar; a Lark grammar is shown in its description.
    /// </summary>
    public static string ParametersFor(string? pattern, string? larkGrammar = null)
    {
        var description = larkGrammar is null ? "The tool's whole input, as text." : $"The tool's whole input, as text following this Lark grammar:\n{larkGrammar}";
        var input = new Dictionary<string, string> { ["type"] = "string", ["description"] = description };
        if (pattern is not null)
        {
            input["pattern"] = pattern;
        }

        return JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["type"] = "object",
            ["properties"] = new Dictionary<string, object> { [Parameter] = input },
            ["required"] = new[] { Parameter },
            ["additionalProperties"] = false,
        });
    }

    /// <summary>Arguments that carry <paramref name="input"/> (an earlier call sent back in the conversation).</summary>
    public static string Arguments(string input) => JsonSerializer.Serialize(new Dictionary<string, string> { [Parameter] = input });

    /// <summary>
    /// The input a call's arguments carry: "input", else the only string an object holds; an unconstrained model that
    /// wrote something else gets its arguments passed on as they are, not dropped.
    /// </summary>
    public static string Of(string arguments)
    {
        try
        {
            using var parsed = JsonDocument.Parse(arguments);
            if (parsed.RootElement.ValueKind == JsonValueKind.Object)
            {
                if (parsed.RootElement.TryGetProperty(Parameter, out var input) && input.ValueKind == JsonValueKind.String)
                {
                    return input.GetString()!;
                }

                var properties = parsed.RootElement.EnumerateObject().ToList();
                if (properties is [{ Value.ValueKind: JsonValueKind.String } only])
                {
                    return only.Value.GetString()!;
                }
            }
        }
        catch (Exception exception) when (exception is JsonException or InvalidOperationException or ArgumentException)
        {
            // Arguments cut short by the token limit, or holding a lone surrogate escape (\ud83d): read as far as they go.
            var read = new Stream();
            var input = read.Add(arguments);
            return read.ReadsInput ? input : arguments;
        }

        return arguments;
    }

    /// <summary>
    /// Reads the input out of arguments streamed piece by piece (<c>{"input": "...</c>), decoding the string's escapes as
    /// they come, so a custom tool's input streams as its arguments are generated. Anything else than that layout
    /// (possible only without a forced tool_choice) yields nothing here; the whole input goes out at the end.
    /// </summary>
    public sealed class Stream
    {
        private const char Replacement = '\uFFFD';

        private readonly StringBuilder _pending = new();
        private State _state = State.Opening;

        private enum State
        {
            Opening,
            Key,
            Colon,
            Quote,
            Text,
            Done,
            Other,
        }

        /// <summary>Whether the arguments so far have the expected layout and their input has begun.</summary>
        public bool ReadsInput => _state is State.Text or State.Done;

        public string Add(string arguments)
        {
            _pending.Append(arguments);
            var output = new StringBuilder();
            var i = 0;
            var text = _pending.ToString();
            while (i < text.Length && _state is not (State.Done or State.Other))
            {
                var c = text[i];
                switch (_state)
                {
                    case State.Opening when char.IsWhiteSpace(c):
                    case State.Colon when char.IsWhiteSpace(c):
                    case State.Quote when char.IsWhiteSpace(c):
                        i++;
                        break;
                    case State.Opening:
                        _state = c == '{' ? State.Key : State.Other;
                        i++;
                        break;
                    case State.Key:
                        var key = "\"" + Parameter + "\"";
                        var trimmed = text[i..].TrimStart();
                        if (trimmed.Length < key.Length)
                        {
                            if (!key.StartsWith(trimmed, StringComparison.Ordinal))
                            {
                                _state = State.Other;
                            }

                            return Keep(text, i, output); // wait for the rest of the key
                        }

                        _state = trimmed.StartsWith(key, StringComparison.Ordinal) ? State.Colon : State.Other;
                        i = text.Length - trimmed.Length + key.Length;
                        break;
                    case State.Colon:
                        _state = c == ':' ? State.Quote : State.Other;
                        i++;
                        break;
                    case State.Quote:
                        _state = c == '"' ? State.Text : State.Other;
                        i++;
                        break;
                    case State.Text when c == '"':
                        _state = State.Done;
                        i++;
                        break;
                    case State.Text when c == '\\':
                        if (!TryEscape(text, i, out var decoded, out var length))
                        {
                            return Keep(text, i, output); // an escape cut in two: wait for its end
                        }

                        output.Append(decoded);
                        i += length;
                        break;
                    case State.Text when char.IsHighSurrogate(c) && i + 1 == text.Length:
                        return Keep(text, i, output); // half a character: wait for the other half
                    case State.Text when char.IsHighSurrogate(c) && char.IsLowSurrogate(text[i + 1]):
                        output.Append(c).Append(text[i + 1]);
                        i += 2;
                        break;
                    case State.Text when char.IsSurrogate(c):
                        output.Append(Replacement); // half a character alone is no text
                        i++;
                        break;
                    case State.Text:
                        output.Append(c);
                        i++;
                        break;
                }
            }

            return Keep(text, text.Length, output);
        }

        private string Keep(string text, int consumed, StringBuilder output)
        {
            _pending.Clear().Append(text, consumed, text.Length - consumed);
            return output.ToString();
        }

        private static bool TryEscape(string text, int at, out string decoded, out int length)
        {
            decoded = string.Empty;
            length = 0;
            if (at + 1 >= text.Length)
            {
                return false;
            }

            if (text[at + 1] != 'u')
            {
                decoded = text[at + 1] switch
                {
                    'n' => "\n",
                    't' => "\t",
                    'r' => "\r",
                    'b' => "\b",
                    'f' => "\f",
                    var other => other.ToString(), // \" \\ \/
                };
                length = 2;
                return true;
            }

            if (at + 6 > text.Length)
            {
                return false;
            }

            if (!TryHex(text, at + 2, out var unit))
            {
                return Single(Replacement, out decoded, out length); // no JSON writer sends this; the input still streams
            }

            if (!char.IsSurrogate(unit))
            {
                return Single(unit, out decoded, out length);
            }

            // A high surrogate's low half follows as its own escape: the pair goes out together, never half a
            // character; a half alone becomes U+FFFD (no text holds it, and JSON writers refuse it).
            var next = at + 6;
            if (char.IsLowSurrogate(unit) || (next < text.Length && text[next] != '\\') || (next + 1 < text.Length && text[next + 1] != 'u'))
            {
                return Single(Replacement, out decoded, out length);
            }

            if (next + 6 > text.Length)
            {
                return false;
            }

            if (!TryHex(text, next + 2, out var low) || !char.IsLowSurrogate(low))
            {
                return Single(Replacement, out decoded, out length);
            }

            decoded = new string([unit, low]);
            length = 12;
            return true;
        }

        private static bool TryHex(string text, int at, out char unit)
        {
            var parsed = int.TryParse(text.AsSpan(at, 4), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var value);
            unit = (char)value;
            return parsed;
        }

        private static bool Single(char unit, out string decoded, out int length)
        {
            decoded = unit.ToString();
            length = 6;
            return true;
        }
    }
}
