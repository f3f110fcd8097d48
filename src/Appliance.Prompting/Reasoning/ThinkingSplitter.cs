using System.Text;

namespace Appliance.Prompting.Reasoning;

/// <summary>
/// Splits a reasoning model's output, as it streams, into its thought and its answer. Text that may be the start of a
/// marker, or whitespace that may end a thought, is held until the next piece tells; the whitespace a model writes
/// around its markers (<c>&lt;think&gt;\n</c>, <c>\n&lt;/think&gt;\n\n</c>) belongs to neither part, as the templates
/// that render earlier thoughts strip it too.
/// </summary>
public sealed class ThinkingSplitter
{
    private readonly ThinkingTags _tags;
    private readonly StringBuilder _held = new();
    private State _state;
    private bool _partStarted; // whether the current thought or post-thought answer has written anything but whitespace

    public ThinkingSplitter(ThinkingTags tags, ThinkingStart start)
    {
        _tags = tags;
        _state = start switch
        {
            ThinkingStart.Open => State.Thinking,
            ThinkingStart.MayOpen => State.Undecided,
            _ => State.Answer,
        };
        Thought = start == ThinkingStart.Open;
    }

    private enum State
    {
        Undecided,
        Thinking,
        AfterThought,
        Answer,
    }

    /// <summary>Whether the output is inside an opened thought.</summary>
    public bool Thinking => _state == State.Thinking;

    /// <summary>Whether the output opened a thought (or the prompt did).</summary>
    public bool Thought { get; private set; }

    /// <summary>Splits one output as a whole: the thought (null when there was none) and the answer.</summary>
    public static (string? Reasoning, string Content) Split(ThinkingTags tags, ThinkingStart start, string output)
    {
        var splitter = new ThinkingSplitter(tags, start);
        var (reasoning, content) = splitter.Add(output);
        var (restReasoning, restContent) = splitter.Finish();
        return (splitter.Thought ? reasoning + restReasoning : null, content + restContent);
    }

    /// <summary>The next piece of output: what is now known to be thought and what answer.</summary>
    public (string Reasoning, string Content) Add(string text)
    {
        _held.Append(text);
        var reasoning = new StringBuilder();
        var content = new StringBuilder();
        while (Step(reasoning, content))
        {
        }

        return (reasoning.ToString(), content.ToString());
    }

    /// <summary>The end of the output: held text is given to the part it was in (a thought cut short stays thought).</summary>
    public (string Reasoning, string Content) Finish()
    {
        var rest = _held.ToString();
        _held.Clear();
        return _state switch
        {
            State.Thinking => (_partStarted ? rest.TrimEnd() : rest.Trim(), string.Empty),
            State.AfterThought => (string.Empty, _partStarted ? rest : string.Empty),
            _ => (string.Empty, rest),
        };
    }

    /// <summary>Moves what the held text decides; false once the rest must wait for more.</summary>
    private bool Step(StringBuilder reasoning, StringBuilder content)
    {
        var held = _held.ToString();
        switch (_state)
        {
            case State.Undecided:
            {
                var start = held.TrimStart();
                if (start.StartsWith(_tags.Open, StringComparison.Ordinal))
                {
                    Enter(State.Thinking, start[_tags.Open.Length..]);
                    return true;
                }

                if (start.Length == 0 || _tags.Open.StartsWith(start, StringComparison.Ordinal))
                {
                    return false;
                }

                _state = State.Answer; // no thought: the answer is the output as written
                return true;
            }

            case State.Thinking:
            {
                Thought = true;
                if (!_partStarted)
                {
                    var start = held.TrimStart();
                    if (start.StartsWith(_tags.Open, StringComparison.Ordinal))
                    {
                        // A model that writes the opening tag the prompt already wrote: one thought, not two.
                        Enter(State.Thinking, start[_tags.Open.Length..]);
                        return true;
                    }

                    if (start.Length == 0 || (_tags.Open.StartsWith(start, StringComparison.Ordinal) && !_tags.Close.StartsWith(start, StringComparison.Ordinal)))
                    {
                        return false;
                    }

                    held = start;
                    _held.Clear().Append(start);
                }

                var close = held.IndexOf(_tags.Close, StringComparison.Ordinal);
                if (close >= 0)
                {
                    reasoning.Append(held.AsSpan(0, close).TrimEnd());
                    Enter(State.AfterThought, held[(close + _tags.Close.Length)..]);
                    return true;
                }

                // Keep back a possible start of the closing tag and the whitespace before it.
                var keep = PartialSuffix(held, _tags.Close);
                var ready = held.AsSpan(0, held.Length - keep);
                var text = ready.TrimEnd();
                if (!_partStarted && text.Length == 0)
                {
                    return false;
                }

                _partStarted = true;
                reasoning.Append(text);
                _held.Remove(0, text.Length);
                return false;
            }

            case State.AfterThought:
            {
                if (!_partStarted)
                {
                    var start = held.TrimStart();
                    if (start.Length == 0)
                    {
                        _held.Clear();
                        return false;
                    }

                    _partStarted = true;
                    held = start;
                }

                content.Append(held);
                _held.Clear();
                return false;
            }

            default:
                content.Append(held);
                _held.Clear();
                return false;
        }
    }

    private void Enter(State state, string rest)
    {
        Thought |= state == State.Thinking;
        _state = state;
        _partStarted = false;
        _held.Clear().Append(rest);
    }

    /// <summary>How many characters at the end of <paramref name="text"/> could begin <paramref name="marker"/>.</summary>
    private static int PartialSuffix(string text, string marker)
    {
        for (var length = Math.Min(marker.Length - 1, text.Length); length > 0; length--)
        {
            if (text.AsSpan(text.Length - length).SequenceEqual(marker.AsSpan(0, length)))
            {
                return length;
            }
        }

        return 0;
    }
}
