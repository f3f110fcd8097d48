using System.Text;
using Appliance.Engine.Requests;
using Appliance.Prompting;

namespace Appliance.Api.OpenAi;

/// <summary>
/// One streamed choice of a request with tools. With tool_choice auto, plain answer text streams as it comes, but from
/// where the text may be a tool call (the format's marker, or Llama's opening brace) it is held until the answer ends,
/// then sent either as tool-call deltas or, if it was no call after all, as text: an unconstrained model may still
/// break a call it began. With a forced tool_choice the grammar keeps the output to the call layout, so each call is
/// streamed as it is generated (<see cref="Incremental"/>): its opening once its name is complete, then its arguments.
/// </summary>
internal sealed class ToolCallStream(ToolCallFormat format, bool incremental = false, Func<string>? newId = null)
{
    /// <summary>Arguments of a call sent whole at the end are sent in pieces of this many characters, as OpenAI streams them.</summary>
    public const int ArgumentPiece = 48;

    private readonly StringBuilder _text = new();
    private readonly List<TokenLogprob> _heldLogprobs = [];
    private readonly List<StreamedCall> _streamed = [];
    private readonly IStreamedCallReader _reader = format.StreamedCallReader();
    private readonly Func<string> _newId = newId ?? ToolUse.IdsFor(format);
    private readonly bool _incremental = incremental;
    private int _sent;

    public string Text => _text.ToString();

    /// <summary>Whether calls are streamed while they are generated (a forced tool_choice).</summary>
    public bool Incremental => _incremental;

    /// <summary>Takes a delta; returns the text (and its log probabilities) that can be sent now.</summary>
    public (string Text, IReadOnlyList<TokenLogprob>? Logprobs) Add(string text, IReadOnlyList<TokenLogprob>? logprobs)
    {
        _text.Append(text);
        _heldLogprobs.AddRange(logprobs ?? []);
        if (_incremental)
        {
            _reader.Append(text);
            return (string.Empty, null); // a forced answer is calls only: no text to send
        }

        var all = _text.ToString();
        var until = Math.Max(format.HoldFrom(all), _sent);
        if (until == _sent)
        {
            return (string.Empty, null);
        }

        var ready = all[_sent..until];
        if (_sent == 0 && string.IsNullOrWhiteSpace(ready))
        {
            return (string.Empty, null); // whitespace before a call is no answer: held until something else follows
        }

        _sent = until;
        var sentLogprobs = _heldLogprobs.Count > 0 ? _heldLogprobs.ToList() : null;
        _heldLogprobs.Clear();
        return (ready, sentLogprobs);
    }

    /// <summary>
    /// While generating, for <see cref="Incremental"/> streams: what can be sent of the calls now, in order: a call's
    /// opening (<see cref="CallDelta.Opening"/>) once its name is complete, then the arguments generated since.
    /// </summary>
    public IReadOnlyList<CallDelta> CallDeltas()
    {
        if (!_incremental)
        {
            return [];
        }

        var deltas = new List<CallDelta>();
        var calls = _reader.Calls;
        for (var i = 0; i < calls.Count && calls[i].Name is { } name; i++)
        {
            if (i == _streamed.Count)
            {
                _streamed.Add(new StreamedCall(_newId(), name, calls[i]));
                deltas.Add(new CallDelta(i, new ToolCall(_streamed[i].Id, name, string.Empty), string.Empty));
            }

            if (calls[i].ArgumentsLength > _streamed[i].Sent)
            {
                deltas.Add(new CallDelta(i, null, calls[i].ArgumentsFrom(_streamed[i].Sent)));
                _streamed[i].Sent = calls[i].ArgumentsLength;
            }
        }

        return deltas;
    }

    /// <summary>
    /// At the end of an <see cref="Incremental"/> stream, given the calls read from the whole answer: what is left to
    /// send (calls not opened yet, arguments not sent yet) and the calls as the client received them, with the ids it
    /// was given. An answer cut short (max_tokens) keeps the calls as far as they were streamed; Complete says whether
    /// the answer held whole calls.
    /// </summary>
    public (IReadOnlyList<CallDelta> Remaining, IReadOnlyList<ToolCall> Calls, bool Complete) Finish(ParsedOutput parsed)
    {
        var deltas = new List<CallDelta>();
        var sent = _streamed.Select(call => call.Read.ArgumentsFrom(0)[..call.Sent]).ToList();
        var consistent = parsed.Calls.Count >= _streamed.Count
            && _streamed.Select((call, i) => parsed.Calls[i].Name == call.Name && parsed.Calls[i].Arguments.StartsWith(sent[i], StringComparison.Ordinal)).All(same => same);
        if (parsed.Calls.Count == 0 || !consistent)
        {
            return ([], [.. _streamed.Select((call, i) => new ToolCall(call.Id, call.Name, sent[i]))], false);
        }

        var calls = new List<ToolCall>();
        for (var i = 0; i < parsed.Calls.Count; i++)
        {
            var call = parsed.Calls[i];
            if (i < _streamed.Count)
            {
                if (call.Arguments.Length > sent[i].Length)
                {
                    deltas.Add(new CallDelta(i, null, call.Arguments[sent[i].Length..]));
                }

                calls.Add(call with { Id = _streamed[i].Id });
            }
            else
            {
                deltas.Add(new CallDelta(i, call, string.Empty));
                deltas.AddRange(Pieces(call.Arguments).Select(piece => new CallDelta(i, null, piece)));
                calls.Add(call);
            }
        }

        return (deltas, calls, true);
    }

    /// <summary>At the end: the held text when the answer held no calls (null when it did), with its log probabilities.</summary>
    public (string? Text, IReadOnlyList<TokenLogprob>? Logprobs) Rest(bool calledTools)
    {
        var rest = calledTools || _streamed.Count > 0 || _sent >= _text.Length ? null : _text.ToString(_sent, _text.Length - _sent);
        var logprobs = _heldLogprobs.Count > 0 ? _heldLogprobs.ToList() : null;
        _heldLogprobs.Clear();
        return (rest, logprobs);
    }

    /// <summary>A call's arguments in the pieces they are streamed in.</summary>
    public static IEnumerable<string> Pieces(string arguments)
    {
        for (var start = 0; start < arguments.Length;)
        {
            var length = Math.Min(ArgumentPiece, arguments.Length - start);
            length += start + length < arguments.Length && char.IsHighSurrogate(arguments[start + length - 1]) ? 1 : 0; // never half a character
            yield return arguments.Substring(start, length);
            start += length;
        }
    }

    /// <summary>A call whose opening was sent: its id, its name, what the reader holds of it and how much of its arguments went out.</summary>
    private sealed class StreamedCall(string id, string name, PartialToolCall read)
    {
        public string Id => id;

        public string Name => name;

        public PartialToolCall Read => read;

        public int Sent { get; set; }
    }
}

/// <summary>One tool-call delta of a choice: the call's opening (id, type, name) or a piece of its arguments.</summary>
internal sealed record CallDelta(int CallIndex, ToolCall? Opening, string Arguments);
