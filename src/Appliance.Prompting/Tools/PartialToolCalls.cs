using System.Text.Json;

namespace Appliance.Prompting;

/// <summary>
/// The tool calls in output that is still being generated: for each call object so far, its name once the name's
/// string is complete, and where its arguments object begins and (once closed) ends. Text outside call objects (the
/// format's markers and separators) is skipped, so one reader serves every format. Meant for output a grammar keeps to
/// the call layout (a forced tool_choice), where what has been read can be streamed without being taken back.
/// </summary>
public static class PartialToolCalls
{
    /// <summary>Reads <paramref name="text"/> from the start; <paramref name="argumentKeys"/> name the arguments member.</summary>
    public static IReadOnlyList<PartialToolCall> Read(string text, params string[] argumentKeys)
    {
        var calls = new List<PartialToolCall>();
        var depth = 0; // braces and brackets opened inside the current call object
        var inCall = false;
        var inString = false;
        var escaped = false;
        var stringStart = -1;
        string? lastKey = null;
        var expectingValue = false;
        string? name = null;
        var argumentsStart = -1;
        var argumentsDepth = -1;
        var argumentsEnd = -1;

        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (!inCall)
            {
                if (c == '{')
                {
                    inCall = true;
                    depth = 1;
                    (lastKey, expectingValue, name, argumentsStart, argumentsDepth, argumentsEnd) = (null, false, null, -1, -1, -1);
                }

                continue;
            }

            if (inString)
            {
                if (escaped)
                {
                    escaped = false;
                }
                else if (c == '\\')
                {
                    escaped = true;
                }
                else if (c == '"')
                {
                    inString = false;
                    if (depth == 1)
                    {
                        var value = Unescape(text, stringStart, i);
                        if (expectingValue)
                        {
                            if (lastKey == "name")
                            {
                                name = value;
                            }

                            expectingValue = false;
                        }
                        else
                        {
                            lastKey = value;
                        }
                    }
                }

                continue;
            }

            switch (c)
            {
                case '"':
                    inString = true;
                    stringStart = i;
                    break;
                case ':' when depth == 1:
                    expectingValue = true;
                    break;
                case ',' when depth == 1:
                    expectingValue = false;
                    break;
                case '{' or '[':
                    if (depth == 1 && expectingValue && lastKey is { } key && argumentKeys.Contains(key) && argumentsStart < 0)
                    {
                        argumentsStart = i;
                        argumentsDepth = depth;
                    }

                    depth++;
                    break;
                case '}' or ']':
                    depth--;
                    if (depth == argumentsDepth && argumentsEnd < 0 && argumentsStart >= 0)
                    {
                        argumentsEnd = i + 1;
                        expectingValue = false;
                    }

                    if (depth == 0)
                    {
                        calls.Add(new PartialToolCall(name, argumentsStart, argumentsEnd, Closed: true));
                        inCall = false;
                    }

                    break;
            }
        }

        if (inCall)
        {
            calls.Add(new PartialToolCall(name, argumentsStart, argumentsEnd, Closed: false));
        }

        return calls;
    }

    // A complete JSON string token, [start, end] being its quotes.
    private static string? Unescape(string text, int start, int end)
    {
        try
        {
            return JsonSerializer.Deserialize<string>(text.AsSpan(start, end - start + 1));
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>
/// One call object read so far: its name (null until its string is complete), where its arguments begin (-1: not
/// yet) and end (-1: still open), and whether the call object itself is closed.
/// </summary>
public sealed record PartialToolCall(string? Name, int ArgumentsStart, int ArgumentsEnd, bool Closed)
{
    /// <summary>The arguments text generated so far: all of it once closed.</summary>
    public string ArgumentsSoFar(string text) =>
        ArgumentsStart < 0 ? string.Empty : text[ArgumentsStart..(ArgumentsEnd < 0 ? text.Length : ArgumentsEnd)];
}
