namespace Appliance.Api.Guardrails;

/// <summary>Every rule's matches in one text, in order and without overlaps.</summary>
internal static class MatchResolution
{
    /// <summary>
    /// The matches of <paramref name="rules"/> in <paramref name="text"/> from first to last; where two overlap the one
    /// starting first is kept (at the same start a block before a mask, then the longer).
    /// </summary>
    public static List<RuleMatch> Resolve(IReadOnlyList<GuardrailRule> rules, string text)
    {
        var found = rules.SelectMany(rule => rule.Matches(text))
            .OrderBy(m => m.Start).ThenBy(m => m.Rule.Action == GuardrailAction.Block ? 0 : 1).ThenByDescending(m => m.Length);
        var kept = new List<RuleMatch>();
        var end = 0;
        foreach (var match in found)
        {
            if (match.Start >= end)
            {
                kept.Add(match);
                end = match.End;
            }
        }

        return kept;
    }
}
