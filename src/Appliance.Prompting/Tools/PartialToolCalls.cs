using System.Text;
using System.Text.Json;

namespace Appliance.Prompting;

/// <summary>
/// Reads tool calls out of output while it is generated, one piece at a time: for each call object so far, its name
/// once the name's string is complete, and its arguments object as far as it has come. Text outside call objects (the
/// format's markers and separators) is skipped, so one reader serves every format whose calls are
/// <c>{"name": ..., "arguments": {...}}</c> objects. Each character is looked at once, however long the answer. Meant
/// for output a grammar keeps to the call layout (a forced tool_choice), where what has been read can be streamed
/// without being taken back.
/// </summary>
public sealed class PartialToolCalls(params string[] argumentKeys) : IStreamedCallReader
{
    private readonly List<PartialToolCall> _calls = [];
    private readonly StringBuilder _token = new(); // the string at the call object's own level being read, with its quotes
    private PartialToolCall? _call; // the call object being read
    private int _depth; // braces and brackets open inside the call object
    private bool _inString;
    private bool _escaped;
    private string? _key;
    private bool _expectingValue;
    private int _argumentsDepth = -1; // the depth the arguments value opened at, while it is open

    public IReadOnlyList<PartialToolCall> Calls => _calls;

    public void Append(string text)
    {
        foreach (var c in text)
        {
            Step(c);
        }
    }

    private void Step(char c)
    {
        if (_call is null)
        {
            if (c == '{')
            {
                _call = new PartialToolCall();
                _calls.Add(_call);
                (_depth, _key, _expectingValue, _argumentsDepth) = (1, null, false, -1);
            }

            return;
        }

        if (_argumentsDepth >= 0)
        {
            _call.Append(c);
        }

        if (_inString)
        {
            if (_depth == 1)
            {
                _token.Append(c);
            }

            if (_escaped)
            {
                _escaped = false;
            }
            else if (c == '\\')
            {
                _escaped = true;
            }
            else if (c == '"')
            {
                _inString = false;
                if (_depth == 1)
                {
                    EndOwnString();
                }
            }

            return;
        }

        switch (c)
        {
            case '"':
                _inString = true;
                _token.Clear().Append(c);
                break;
            case ':' when _depth == 1:
                _expectingValue = true;
                break;
            case ',' when _depth == 1:
                _expectingValue = false;
                break;
            case '{' or '[':
                if (_depth == 1 && _expectingValue && _key is { } key && argumentKeys.Contains(key) && !_call.HasArguments)
                {
                    _argumentsDepth = _depth;
                    _call.Append(c);
                }

                _depth++;
                break;
            case '}' or ']':
                _depth--;
                if (_depth == _argumentsDepth)
                {
                    _argumentsDepth = -1;
                    _call.ArgumentsClosed = true;
                    _expectingValue = false;
                }

                if (_depth == 0)
                {
                    _call.Closed = true;
                    _call = null;
                }

                break;
        }
    }

    // A string at the call object's own level ended: a member's name, or the value of the one before it.
    private void EndOwnString()
    {
        string? value;
        try
        {
            value = JsonSerializer.Deserialize<string>(_token.ToString());
        }
        catch (JsonException)
        {
            value = null;
        }

        if (!_expectingValue)
        {
            _key = value;
            return;
        }

        if (_key == "name" && _call!.Name is null)
        {
            _call.Name = value;
        }

        _expectingValue = false;
    }
}

/// <summary>One call object read so far: its name (null until its string is complete) and its arguments so far.</summary>
public sealed class PartialToolCall
{
    private readonly StringBuilder _arguments = new();

    public string? Name { get; internal set; }

    /// <summary>Whether the arguments value has begun.</summary>
    public bool HasArguments => _arguments.Length > 0;

    /// <summary>Whether the arguments value is complete.</summary>
    public bool ArgumentsClosed { get; internal set; }

    /// <summary>Whether the call object is complete.</summary>
    public bool Closed { get; internal set; }

    public int ArgumentsLength => _arguments.Length;

    /// <summary>The arguments text from <paramref name="start"/> to where generation has got.</summary>
    public string ArgumentsFrom(int start) => _arguments.ToString(start, _arguments.Length - start);

    internal void Append(char c) => _arguments.Append(c);
}
