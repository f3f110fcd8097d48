using System.Text;
using Appliance.Engine.Output;

namespace Appliance.Api.Guardrails;

/// <summary>
/// Screens one answer as it streams. Text is held back as far as the longest match a rule is meant to find, so a match
/// is whole before any of it is sent: a mask then replaces all of it, a block ends the answer where it began. Text is
/// released up to a space where one is near, so that the held part starts a word and whole-word rules see it whole.
/// </summary>
internal sealed class OutputScreen(IReadOnlyList<GuardrailRule> rules, RequestGuardrails request) : IOutputScreen
{
    private readonly int _holdBack = rules.Max(r => r.MaxLength);
    private string _pending = string.Empty;

    /// <summary>How far back a release looks for a space: further, and an answer without one would lag for nothing.</summary>
    private const int MaxWordLookBack = 32;

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

        // A match that starts before safeEnd is whole (it could only grow past a rule's length).
        var safeEnd = final ? _pending.Length : Math.Max(0, _pending.Length - _holdBack);
        var sent = new StringBuilder();
        var position = 0;
        foreach (var match in MatchResolution.Resolve(rules, _pending))
        {
            if (match.Start >= safeEnd)
            {
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

        var releaseEnd = final ? _pending.Length : Math.Max(position, WordStart(safeEnd, position));
        sent.Append(_pending, position, releaseEnd - position);
        _pending = _pending[releaseEnd..];
        return new ScreenedText(sent.ToString(), false);
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
