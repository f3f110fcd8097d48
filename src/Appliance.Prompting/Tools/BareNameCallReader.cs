using System.Text;

namespace Appliance.Prompting;

/// <summary>
/// Reads calls written as text markers around a bare name and a JSON arguments object (DeepSeek's layouts: what opens a
/// call, the name, what comes between name and arguments, the object, what closes the call), one character at a time.
/// A name is complete once the text after it has come whole; the arguments end where their object's braces balance,
/// braces inside strings not counted.
/// </summary>
public sealed class BareNameCallReader(string open, string beforeArguments, string close) : IStreamedCallReader
{
    private readonly List<PartialToolCall> _calls = [];
    private readonly StringBuilder _pending = new(); // text of the part being read, until its end marker is whole
    private Part _part = Part.BetweenCalls;
    private PartialToolCall? _call;
    private int _depth;
    private bool _inString;
    private bool _escaped;

    private enum Part
    {
        BetweenCalls,
        Name,
        BeforeObject,
        Arguments,
        Closing,
    }

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
        switch (_part)
        {
            case Part.BetweenCalls or Part.Closing:
                _pending.Append(c);
                if (_part == Part.Closing && EndsWith(_pending, close))
                {
                    _call!.Closed = true;
                    (_part, _call) = (Part.BetweenCalls, null);
                    _pending.Clear();
                }
                else if (EndsWith(_pending, open))
                {
                    // A call's end marker may be missing before the next one begins: the new call is read all the same.
                    _call = new PartialToolCall();
                    _calls.Add(_call);
                    _part = Part.Name;
                    _pending.Clear();
                }
                else if (_pending.Length > Math.Max(open.Length, close.Length))
                {
                    _pending.Remove(0, 1); // only a marker's length of text can still matter
                }

                break;
            case Part.Name:
                _pending.Append(c);
                if (EndsWith(_pending, beforeArguments))
                {
                    _call!.Name = _pending.ToString(0, _pending.Length - beforeArguments.Length).Trim();
                    _pending.Clear();
                    _part = Part.BeforeObject;
                }

                break;
            case Part.BeforeObject when c == '{':
                _call!.Append(c);
                (_depth, _inString, _escaped, _part) = (1, false, false, Part.Arguments);
                break;
            case Part.Arguments:
                _call!.Append(c);
                ReadArgument(c);
                break;
        }
    }

    private void ReadArgument(char c)
    {
        if (_inString)
        {
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
            }

            return;
        }

        switch (c)
        {
            case '"':
                _inString = true;
                break;
            case '{' or '[':
                _depth++;
                break;
            case '}' or ']':
                if (--_depth == 0)
                {
                    _call!.ArgumentsClosed = true;
                    _part = Part.Closing;
                }

                break;
        }
    }

    private static bool EndsWith(StringBuilder text, string marker)
    {
        if (text.Length < marker.Length)
        {
            return false;
        }

        for (var i = 0; i < marker.Length; i++)
        {
            if (text[text.Length - marker.Length + i] != marker[i])
            {
                return false;
            }
        }

        return true;
    }
}
