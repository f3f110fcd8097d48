using System.Text;
using Appliance.Engine.Output;

namespace Appliance.Api.Guardrails;

/// <summary>
/// Screens one answer as it streams. Text is held back as far as the longest match a rule is meant to find, so a match
/// is whole before any of it is sent: a mask then replaces all of it, a block ends the answer where it began. A rule
/// whose matches hold no whitespace (an address, a single word) needs only the last word held: a match before a space
/// is whole. The end of the text already sent stays as context, so a word cut between two releases is still one word
/// to the rules.
/// </summary>
internal sealed class OutputScreen(IReadOnlyList<GuardrailRule> rules, RequestGuardrails request) : IOutputScreen
{
    /// <summary>How much of the text already sent the rules still see before the held text (for word boundaries).</summary>
    private const int ContextLength = 16;

    /// <summary>How far back a release looks for a space: further, and an answer without one would lag for nothing.</summary>
    private const int MaxWordLookBack = 32;

    private readonly int? _spanningHoldBack = rules.Where(r => r.SpansWhitespace).Select(r => (int?)r.MaxLength).Max();
    private readonly int? _wordHoldBack = rules.Where(r => !r.SpansWhitespace).Select(r => (int?)r.MaxLength).Max();
    private string _context = string.Empty;
    private string _pending = string.Empty;

    public ScreenedText Push(string text)
    {
        _pending += text;
        return Release(final: false);
    }

    public ScreenedText Flush() => Release(final: true);

    private ScreenedText Release(bool final)
    {
        if (_pending.Length == 0)
        {
            return new ScreenedText(string.Empty, false);
        }

        // A match that starts before safeEnd is whole (it could only grow past a rule's length, or across a space).
        var safeEnd = final ? _pending.Length : SafeEnd();
        var text = _context + _pending;
        var sent = new StringBuilder();
        var position = 0;
        var heldFrom = _pending.Length;
        foreach (var found in MatchResolution.Resolve(rules, text, _context.Length))
        {
            var match = found with { Start = found.Start - _context.Length };
            if (match.Start >= safeEnd)
            {
                break;
            }

            // A mask is applied only once it ends in settled text: a block that overlaps it (and so overrules it) is
            // then settled too, and is not found after the mask's text has gone out.
            if (!final && match.Rule.Action == GuardrailAction.Mask && match.End > safeEnd)
            {
                heldFrom = match.Start;
                break;
            }

            sent.Append(_pending, position, match.Start - position);
            request.Record("output", match.Rule);
            if (match.Rule.Action == GuardrailAction.Block)
            {
                _pending = string.Empty;
                return new ScreenedText(sent.ToString(), true);
            }

            sent.Append(match.Rule.Mask);
            position = match.End;
        }

        var releaseEnd = final ? _pending.Length : Math.Max(position, Math.Min(heldFrom, WordStart(safeEnd, position)));
        if (releaseEnd > position && releaseEnd < _pending.Length && char.IsHighSurrogate(_pending[releaseEnd - 1]))
        {
            releaseEnd--; // never half a character: each release is written on its own
        }

        sent.Append(_pending, position, releaseEnd - position);
        var released = _context + _pending[..releaseEnd];
        _context = released[Math.Max(0, released.Length - ContextLength)..];
        _pending = _pending[releaseEnd..];
        return new ScreenedText(sent.ToString(), false);
    }

    private int SafeEnd()
    {
        var length = _pending.Length;
        var lastWord = length;
        while (lastWord > 0 && !char.IsWhiteSpace(_pending[lastWord - 1]))
        {
            lastWord--;
        }

        var safe = length;
        if (_spanningHoldBack is { } spanning)
        {
            safe = Math.Min(safe, length - spanning);
        }

        if (_wordHoldBack is { } word)
        {
            safe = Math.Min(safe, Math.Max(length - word, lastWord));
        }

        return Math.Max(0, safe);
    }

    /// <summary>The start of the word <paramref name="at"/> falls in (just after the space before it), when past <paramref name="from"/>.</summary>
    private int WordStart(int at, int from)
    {
        for (var i = at; i > Math.Max(from, at - MaxWordLookBack); i--)
        {
            if (char.IsWhiteSpace(_pending[i - 1]))
            {
                return i;
            }
        }

        return at;
    }
}
