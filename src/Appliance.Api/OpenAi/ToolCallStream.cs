using System.Text;
using Appliance.Engine.Requests;
using Appliance.Prompting;

namespace Appliance.Api.OpenAi;

/// <summary>
/// One streamed choice of a request with tools: plain answer text streams as it comes, but from where the text may
/// be a tool call (the format's marker, or Llama's opening brace) it is held until the answer ends, then sent either
/// as tool-call deltas or, if it was no call after all, as text.
/// </summary>
internal sealed class ToolCallStream(ToolCallFormat format)
{
    /// <summary>Arguments are sent in pieces of this many characters, as OpenAI streams them.</summary>
    public const int ArgumentPiece = 48;

    private readonly StringBuilder _text = new();
    private readonly List<TokenLogprob> _heldLogprobs = [];
    private int _sent;

    public string Text => _text.ToString();

    /// <summary>Takes a delta; returns the text (and its log probabilities) that can be sent now.</summary>
    public (string Text, IReadOnlyList<TokenLogprob>? Logprobs) Add(string text, IReadOnlyList<TokenLogprob>? logprobs)
    {
        _text.Append(text);
        _heldLogprobs.AddRange(logprobs ?? []);
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

    /// <summary>At the end: the held text when the answer held no calls (null when it did), with its log probabilities.</summary>
    public (string? Text, IReadOnlyList<TokenLogprob>? Logprobs) Rest(bool calledTools)
    {
        var rest = calledTools || _sent >= _text.Length ? null : _text.ToString(_sent, _text.Length - _sent);
        var logprobs = _heldLogprobs.Count > 0 ? _heldLogprobs.ToList() : null;
        _heldLogprobs.Clear();
        return (rest, logprobs);
    }

    /// <summary>A call's arguments in the pieces they are streamed in.</summary>
    public static IEnumerable<string> Pieces(string arguments)
    {
        for (var start = 0; start < arguments.Length; start += ArgumentPiece)
        {
            yield return arguments.Substring(start, Math.Min(ArgumentPiece, arguments.Length - start));
        }
    }
}
