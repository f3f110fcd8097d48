using System.Text.RegularExpressions;

namespace Appliance.Api.Guardrails;

/// <summary>Finds where a rule matches in a text: starts and lengths, from a position on (the text before is context).</summary>
internal interface ITextMatcher
{
    IEnumerable<(int Start, int Length)> Find(string text, int startAt);
}

/// <summary>
/// A detector's or an operator's expression (linear-time, so no text can make it slow), with a detector's check of
/// what it found (a card's Luhn digit, an IBAN's check digits).
/// </summary>
internal sealed class ExpressionMatcher(Regex expression, Func<string, bool>? isValid) : ITextMatcher
{
    public IEnumerable<(int Start, int Length)> Find(string text, int startAt)
    {
        for (var match = expression.Match(text, startAt); match.Success;)
        {
            int? length = match.Length == 0 ? null : isValid is null || isValid(match.Value) ? match.Length : Shorter(match.Value);
            if (length is null)
            {
                // A number that does not check may hide one that does a little further on ("ref 2024 4111 1111 ..."):
                // look again from the next character, not past the whole match.
                match = match.Index + 1 <= text.Length ? expression.Match(text, match.Index + 1) : Match.Empty;
                continue;
            }

            yield return (match.Index, length.Value);
            match = expression.Match(text, match.Index + length.Value);
        }
    }

    /// <summary>
    /// A checked number the expression took too much of (a card number and its security code, an IBAN and the
    /// currency after it): the longest part of the match, ended at a separator, that is a match on its own and checks.
    /// </summary>
    private int? Shorter(string match)
    {
        for (var end = match.Length - 1; end > 0; end--)
        {
            if (match[end] is ' ' or '-' && match[..end] is var part && expression.Match(part) is { Success: true, Index: 0 } whole
                && whole.Length == part.Length && isValid!(part))
            {
                return end;
            }
        }

        return null;
    }
}
